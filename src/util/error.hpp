#pragma once
// One error type for everything a user can get wrong (files, flags, values). The CLI prints
// `tailor: error: <what>` on one line and exits non-zero; nothing else catches it.
#include <stdexcept>
#include <string>

namespace tailor {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tailor
