#pragma once
// Internal to src/kernels/: running a oneDNN primitive without allocating.
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstddef>

namespace tailor::kernels {

// oneDNN's C++ execute() builds a std::unordered_map of its arguments on every call; the C entry
// point takes a plain array, so a step allocates nothing on our side.
template <size_t N>
void run(const dnnl::primitive& p, dnnl::stream& s, const std::array<dnnl_exec_arg_t, N>& args) {
  dnnl_primitive_execute(p.get(), s.get(), static_cast<int>(N), args.data());
}

}  // namespace tailor::kernels
