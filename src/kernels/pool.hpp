#pragma once
// 2x2 pooling, stride 2, floor mode (28-14-7-3): the CNN blocks' pooling, three kinds.
//   max: y = the window's maximum; its gradient goes to the first maximum (a, b, c, d order:
//        x[2i,2j], x[2i,2j+1], x[2i+1,2j], x[2i+1,2j+1]), as PyTorch's MaxPool2d(2).
//   avg: y = (((a + b) + c) + d) * 0.25, gradient dy / 4 to each input: AvgPool2d(2).
//   l2:  y = sqrt(((a^2 + b^2) + c^2) + d^2), no division by the window size (LPPool2d(2, 2));
//        gradient dy * x / y, and 0 where y == 0 (a window of zeros), as PyTorch: no NaN.
// Inputs in no window (a last odd row or column) get a zero gradient; every element of dx is
// written. Every kernel has a twin in kernels::ref (kernels/ref.hpp: plain loops, any layout via
// transposes) that the kernel harness holds it to on every instruction set (kernels/isa.hpp).
// Planar pools: kernels/pool_planar.cpp; channels last and the fused tail: kernels/pool_nhwc.cpp.
#include <cstdint>

namespace tailor::kernels {

enum class PoolKind : uint8_t { max, avg, l2 };
// "max", "avg", "l2": the names the options, config files and checkpoints use (nn/pool.hpp parses them).
inline const char* pool_name(PoolKind kind) {
  return kind == PoolKind::avg ? "avg" : kind == PoolKind::l2 ? "l2" : "max";
}

// Planes of (H, W): x (P, H, W) -> y (P, H/2, W/2).
void pool2x2_forward(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void pool2x2_backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t planes,
                      int64_t h, int64_t w);

// Channels last: x (N, H, W, C) -> y (N, H/2, W/2, C); a window's four inputs are four runs of
// C contiguous floats, pooled a vector of channels at a time. winner (max only, optional): which input of
// its window each output came from, 0..3 in the order above.
void pool2x2_forward_nhwc(PoolKind kind, const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                          uint8_t* winner = nullptr);
void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c);

// The tail of a CNN block (batch norm's affine, relu, pool), channels last, in one pass:
//   t = x * scale[c] + shift[c] (multiply, then add), a = max(t, 0), y = pool(a)
// without writing the full-size a. Bit for bit what the batch norm layer with its fused relu and
// then the pool give.
void affine_relu_pool2x2_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y,
                              int64_t n, int64_t h, int64_t w, int64_t c, uint8_t* winner = nullptr);

// The tail's backward, through the pool and the relu to m = dloss/dt at every input, then into the
// batch norm's two passes (Ioffe & Szegedy 2015, training mode, M = N*H*W values per channel):
//   pass 1 (sums): per task = one row of windows (n, i), part[task] (2, C) = the sums of m and of
//                  m * (x - mean) over the task's inputs; the caller adds the tasks in order.
//   pass 2 (dx):   dx = k1 * ((m - k2) - (x - mean) * k3), with the caller's constants
//                  (k1 = weight * inv_std, k2 = mean of m, k3 = inv_std * mean of m * xhat;
//                  k2 = k3 = 0 in evaluation mode); inputs in no window have m = 0.
struct TailBackward {
  PoolKind kind;
  int64_t n, h, w, c;                      // x (N, H, W, C)
  const float* x;                          // (N, H, W, C) the batch norm's input
  const float *scale, *shift, *mean;       // (C) the forward's affine and the mean it used
  const float* y;                          // (N, H/2, W/2, C) the pool's output
  const uint8_t* winner;                   // max: the forward's winners; unused otherwise
  const float* dy;                         // (N, H/2, W/2, C) the pool's output gradient
  int64_t tasks() const { return n * (h / 2); }
};
void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& b, float* part);
void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& b, const float* k1, const float* k2, const float* k3,
                                          float* dx);

}  // namespace tailor::kernels
