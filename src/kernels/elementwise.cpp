// The element-wise kernels (kernels/elementwise.hpp), compiled for each instruction set of
// kernels/isa.hpp by Google Highway. Plain loops that the compiler vectorises for each target
// (64-bit multiplies for the dropout hash included); no contraction into fused multiply-adds
// (-ffp-contract=off), so every path gives the reference's bits.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/elementwise.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/elementwise.hpp"
#include "kernels/parallel.hpp"
#include "util/rng.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

void mask(uint64_t base, uint64_t threshold, float keep_scale, float* __restrict scale, size_t n) {
  for (size_t i = 0; i < n; ++i) scale[i] = (Rng::mix(base + i) >> 32) >= threshold ? keep_scale : 0.0f;
}

void times(const float* __restrict x, const float* __restrict s, float* __restrict y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * s[i];
}

void sum(const float* __restrict a, const float* __restrict b, float* __restrict y, size_t n, bool relu) {
  if (relu) {
    for (size_t i = 0; i < n; ++i) {
      const float t = a[i] + b[i];
      y[i] = t < 0.0f ? 0.0f : t;
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void relu_grad(const float* __restrict dy, const float* __restrict y, float* __restrict dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void add_into(const float* __restrict x, float* __restrict y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

void bytes(const uint8_t* __restrict x, float scale, float shift, float* __restrict y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]) * scale + shift;
}

void columns(const float* __restrict x, size_t rows, size_t cols, float* __restrict out) {
  std::fill_n(out, cols, 0.0f);
  for (size_t r = 0; r < rows; ++r) {
    const float* __restrict row = x + r * cols;
    for (size_t c = 0; c < cols; ++c) out[c] += row[c];
  }
}

void bf16(const float* __restrict x, uint16_t* __restrict y, size_t n) {
  // What AVX-512 BF16's conversion instruction gives (Intel SDM, convert_fp32_to_bfloat16): round
  // to nearest even on the bits; zeros and denormals become zeros of their sign; a NaN keeps its
  // sign and top bits and is made quiet.
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t out = (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u
                         : (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u
                                                           : rounded;
    y[i] = static_cast<uint16_t>(out);
  }
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(mask);
HWY_EXPORT(times);
HWY_EXPORT(sum);
HWY_EXPORT(relu_grad);
HWY_EXPORT(add_into);
HWY_EXPORT(bytes);
HWY_EXPORT(columns);
HWY_EXPORT(bf16);

void dropout_mask(uint64_t base, uint64_t threshold, float keep_scale, float* scale, size_t n) {
  HWY_DYNAMIC_DISPATCH(mask)(base, threshold, keep_scale, scale, n);
}

void multiply(const float* x, const float* s, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(times)(x, s, y, n); }

void add(const float* a, const float* b, float* y, size_t n, bool relu) { HWY_DYNAMIC_DISPATCH(sum)(a, b, y, n, relu); }

void relu_backward(const float* dy, const float* y, float* dx, size_t n) {
  HWY_DYNAMIC_DISPATCH(relu_grad)(dy, y, dx, n);
}

void accumulate(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(add_into)(x, y, n); }

void bytes_to_floats(const uint8_t* x, float scale, float shift, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(bytes)(x, scale, shift, y, n);
}

void column_sums(const float* x, size_t rows, size_t cols, float* out) {
  HWY_DYNAMIC_DISPATCH(columns)(x, rows, cols, out);
}

// Over both threads from 65,536 values.
void to_bf16(const float* x, uint16_t* y, size_t n) {
  in_parallel(static_cast<int64_t>(n), n >= 65536, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(bf16)(x + lo, y + lo, static_cast<size_t>(hi - lo));
  });
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
