#pragma once
// Float reductions the compiler can vectorise without -ffast-math: sixteen running partial sums
// (one AVX-512 register), combined in a fixed order at the end, so the result is the same on
// every run. A plain `s += x[i]` loop must stay scalar to keep IEEE order.
#include <cstdint>

namespace tailor {

// sum of (x[i] - shift)
inline float sum_shifted(const float* __restrict x, int64_t n, float shift = 0.0f) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += x[i + k] - shift;
  for (int k = 0; i < n; ++i, ++k) acc[k] += x[i] - shift;
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) acc[k] += acc[k + w];
  return acc[0];
}

// sum of (x[i] - shift)^2
inline float sumsq_shifted(const float* __restrict x, int64_t n, float shift) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += (x[i + k] - shift) * (x[i + k] - shift);
  for (int k = 0; i < n; ++i, ++k) acc[k] += (x[i] - shift) * (x[i] - shift);
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) acc[k] += acc[k + w];
  return acc[0];
}

// sum of a[i] * (b[i] - shift)
inline float dot_shifted(const float* __restrict a, const float* __restrict b, int64_t n, float shift) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * (b[i + k] - shift);
  for (int k = 0; i < n; ++i, ++k) acc[k] += a[i] * (b[i] - shift);
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) acc[k] += acc[k + w];
  return acc[0];
}

// The same two sums over the gradient dy masked by y > 0 (a fused ReLU's backward):
// *sum = sum of m, *dot = sum of m * (b - shift), m = y > 0 ? dy : 0.
inline void masked_sum_dot(const float* __restrict dy, const float* __restrict y, const float* __restrict b,
                           int64_t n, float shift, float* sum, float* dot) {
  float as[16] = {}, ad[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) {
      const float m = dy[i + k] * static_cast<float>(y[i + k] > 0.0f);  // a select would not vectorise
      as[k] += m;
      ad[k] += m * (b[i + k] - shift);
    }
  for (int k = 0; i < n; ++i, ++k) {
    const float m = dy[i] * static_cast<float>(y[i] > 0.0f);
    as[k] += m;
    ad[k] += m * (b[i] - shift);
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) {
      as[k] += as[k + w];
      ad[k] += ad[k + w];
    }
  *sum = as[0];
  *dot = ad[0];
}

}  // namespace tailor
