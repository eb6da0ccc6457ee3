#pragma once
// Global average pooling, a CNN's head over its last stage: y (N, C) = the mean of each channel's
// H x W plane, its H*W values summed in order and the sum divided by H*W (PyTorch's
// AdaptiveAvgPool2d(1) then flatten). x is (N, C, H, W) planar or, channels last, (N, H, W, C).
// The backward spreads dy / (H*W) over the plane. One body per instruction set (kernels/gap.cpp).
#include <cstdint>

namespace tailor::kernels {

void global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, bool channels_last);
void global_avg_pool_backward(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw, bool channels_last);

}  // namespace tailor::kernels
