#pragma once
// The machine's memory, for refusing a model that cannot fit before anything is allocated.
#include <unistd.h>

#include <cstdint>

namespace tailor {

inline uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{1} << 34;
}

// Four fifths of it: what one model may plan to use.
inline uint64_t model_memory_limit() { return physical_memory_bytes() / 5 * 4; }

}  // namespace tailor
