#pragma once
// Batch normalisation over rows (Ioffe & Szegedy 2015): x (R, C) with the C channels innermost,
// R = N for (N, C) inputs and N*H*W for channels-last (N, C, H, W) ones. The loops run over rows
// and vectorise across the contiguous channels (kernels/batchnorm.cpp, one body per instruction
// set of kernels/isa.hpp). Sums are taken per chunk of kBatchNormChunk rows in float (the same
// chunks for any thread count, so results do not depend on it); the caller adds the chunks in
// double. Each kernel has a plain-loop twin in kernels::ref (kernels/ref.hpp).
#include <cstdint>

namespace tailor::kernels {

inline constexpr int64_t kBatchNormChunk = 64;
inline int64_t batchnorm_chunks(int64_t rows) { return (rows + kBatchNormChunk - 1) / kBatchNormChunk; }

// part (chunks, C): per chunk, the sum of x (centre == nullptr) or of (x - centre[c])^2.
void batchnorm_rows_sums(const float* x, int64_t rows, int64_t c, const float* centre, float* part);
// y = x * scale[c] + shift[c] (multiply, then add), then max(y, 0) when relu.
void batchnorm_rows_affine(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                           bool relu);
// Backward pass 1: part (chunks, 2, C): the sums of m and of m * (x - mean), m = dy, or with a
// fused relu (relu_y, the forward's output) dy where relu_y > 0.
void batchnorm_rows_backward_sums(const float* dy, const float* x, const float* relu_y, const float* mean,
                                  int64_t rows, int64_t c, float* part);
// Backward pass 2: dx = k1 * ((m - k2) - (x - mean) * k3); in evaluation mode dx = m * k1.
void batchnorm_rows_backward_dx(const float* dy, const float* x, const float* relu_y, const float* mean,
                                const float* k1, const float* k2, const float* k3, bool eval, int64_t rows, int64_t c,
                                float* dx);

}  // namespace tailor::kernels
