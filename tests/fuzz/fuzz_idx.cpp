// The IDX reader, raw and gzip (read_idx): any bytes give an IdxArray that holds exactly what its
// dimensions say, or one tailor::Error.
#include <cstdint>

#include "data/idx.hpp"
#include "fuzz_input.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = tailor::fuzz::write_input(std::string(reinterpret_cast<const char*>(data), size), "input-idx");
  for (int ndim : {1, 3}) {  // labels and images, the two shapes tailor reads
    try {
      const tailor::IdxArray a = tailor::read_idx(path, ndim);
      uint64_t volume = 1;
      for (uint32_t d : a.dims) volume *= d;
      if (a.dims.size() != static_cast<size_t>(ndim) || volume != a.data.size()) __builtin_trap();
    } catch (const tailor::Error&) {
    }
  }
  return 0;
}
