#pragma once
// Copies between the two orders of (N, C, H, W) activations: PyTorch's planar order and channels
// last, (N, H, W, C), the order a CNN's convolution blocks keep end to end (nn/sequential.hpp).
#include <cstdint>

namespace tailor::kernels {

void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);
void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);

}  // namespace tailor::kernels
