#pragma once
// Element-wise kernels of a training step outside the products: dropout masks, pictures to
// floats, a linear layer's bias gradient, bfloat16 copies. One body per instruction set
// (kernels/elementwise.cpp), each the same operations in the same order as kernels::ref's twin.
#include <cstddef>
#include <cstdint>

namespace tailor::kernels {

// Dropout's mask from a counter-based stream: scale[i] = keep_scale where the top 32 bits of
// SplitMix64's output function of (base + i) (Rng::mix) are at or above `threshold` (p * 2^32),
// else 0. Any element can be made in any order, so the loop vectorises.
void dropout_mask(uint64_t base, uint64_t threshold, float keep_scale, float* scale, size_t n);
// y = x * s, element by element.
void multiply(const float* x, const float* s, float* y, size_t n);

// A residual block's end: y = a + b, or with relu y = max(a + b, 0) (0 where the sum is below 0).
void add(const float* a, const float* b, float* y, size_t n, bool relu);
// dx = dy where y > 0, else 0: relu's gradient from its output.
void relu_backward(const float* dy, const float* y, float* dx, size_t n);
// y += x, element by element (a residual block's two input gradients).
void accumulate(const float* x, float* y, size_t n);

// y = x * scale + shift for bytes x (multiply, then add): pictures to model inputs.
void bytes_to_floats(const uint8_t* x, float scale, float shift, float* y, size_t n);

// out (cols) = the column sums of x (rows, cols), rows added in order (a bias's gradient).
void column_sums(const float* x, size_t rows, size_t cols, float* out);

// y = x rounded to bfloat16 (bits as uint16) as AVX-512 BF16's instruction rounds: to nearest
// even, denormals to zero, a NaN to a quiet NaN.
void to_bf16(const float* x, uint16_t* y, size_t n);

}  // namespace tailor::kernels
