#pragma once
// 2x2 max-pooling, stride 2, floor mode, on planes of (H, W) floats: the CNN blocks' pooling.
//   forward:  y (P, H/2, W/2) = max over each 2x2 window of x (P, H, W)
//   backward: dx (P, H, W) = dy at the window's first maximum (as PyTorch), 0 elsewhere
//             (the winner is found again from x and y; every element of dx is written)
// The fast versions use AVX-512 masked loads and stores where the build has it (rows of 7 or 14
// outputs are shorter than a vector, so plain vectorised loops ran their scalar tails).
#include <cstdint>

namespace tailor::kernels {

void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                         int64_t w);
// The tail of a CNN block in evaluation mode, in one pass:
//   y (N, C, H/2, W/2) = max over each 2x2 window of relu(x * scale[c] + shift[c]), x (N, C, H, W)
// (multiply, then add: bit for bit what batch norm with its fused relu and then the max-pool give,
// without writing and reading the full-size tensor in between).
void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w);

// The same three on channels-last arrays, x (N, H, W, C) -> y (N, H/2, W/2, C): a window's four
// inputs are four runs of C contiguous floats, so every channel is pooled at once (plain loops
// the compiler vectorises over C; no shuffles). Same results, element for element, as the planar
// kernels on the transposed arrays.
// winner (optional, like y): which input of its window each output came from, 0..3 for
// x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1] (the first maximum).
void maxpool2x2_forward_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                             uint8_t* winner = nullptr);
void maxpool2x2_backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                              int64_t w, int64_t c);
void affine_relu_maxpool2x2_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n,
                                 int64_t h, int64_t w, int64_t c, uint8_t* winner = nullptr);

// (N, C, H, W) <-> (N, H, W, C) copies.
void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);
void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);

namespace ref {
void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                         int64_t w);
void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w);
// Channels last: transpose to planes, the planar reference above, transpose back.
void maxpool2x2_forward_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c);
void maxpool2x2_backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                              int64_t w, int64_t c);
void affine_relu_maxpool2x2_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n,
                                 int64_t h, int64_t w, int64_t c);
}  // namespace ref

}  // namespace tailor::kernels
