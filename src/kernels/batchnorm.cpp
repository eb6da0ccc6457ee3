#include "kernels/batchnorm.hpp"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tailor::kernels {

namespace {

// One group of channels: 16 AVX-512 lanes (one register per group stays in place across a
// chunk's rows), or one float where the build has no AVX-512 (the same loops, scalar).
#if defined(__AVX512F__)
using Vec = __m512;
inline __mmask16 lanes(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u); }
inline Vec load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline void store(float* p, __mmask16 m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec zero() { return _mm512_setzero_ps(); }
// relu as std::max(v, 0) gives it: 0 where v < 0, else v.
inline Vec relu(Vec v) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_LT_OQ), v, zero()); }
// dy where y > 0, else 0.
inline Vec pass_where_positive(Vec dy, Vec y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, zero(), _CMP_GT_OQ), dy); }
constexpr int64_t kLanes = 16;
#else
struct Vec { float v; };
using __mmask16 = int;
inline __mmask16 lanes(int64_t) { return 1; }
inline Vec load(const float* p, __mmask16) { return {*p}; }
inline void store(float* p, __mmask16, Vec v) { *p = v.v; }
inline Vec add(Vec a, Vec b) { return {a.v + b.v}; }
inline Vec sub(Vec a, Vec b) { return {a.v - b.v}; }
inline Vec mul(Vec a, Vec b) { return {a.v * b.v}; }
inline Vec zero() { return {0.0f}; }
inline Vec relu(Vec a) { return {std::max(a.v, 0.0f)}; }
inline Vec pass_where_positive(Vec dy, Vec y) { return {y.v > 0.0f ? dy.v : 0.0f}; }
constexpr int64_t kLanes = 1;
#endif

constexpr int64_t kChunk = kBatchNormChunk;

// The loop every kernel here shares: chunks of kChunk rows over the threads (the same chunks for
// any thread count), and within a chunk the channels a group of kLanes at a time:
// body(chunk, first row, end row, first channel, lane mask).
template <class Body>
void over_chunks(int64_t rows, int64_t C, Body body) {
  const int64_t chunks = batchnorm_chunks(rows);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t begin = ch * kChunk, end = std::min(rows, begin + kChunk);
    for (int64_t k = 0; k < C; k += kLanes) body(ch, begin, end, k, lanes(C - k));
  }
}

}  // namespace

void batchnorm_rows_sums(const float* in, int64_t rows, int64_t C, const float* centre, float* part) {
  over_chunks(rows, C, [&](int64_t ch, int64_t begin, int64_t end, int64_t k, __mmask16 m) {
    const Vec mu = centre ? load(centre + k, m) : zero();
    Vec acc = zero();
    for (int64_t r = begin; r < end; ++r) {
      const Vec v = load(in + r * C + k, m);
      if (!centre) {
        acc = add(acc, v);
      } else {
        const Vec d = sub(v, mu);
        acc = add(acc, mul(d, d));
      }
    }
    store(part + ch * C + k, m, acc);
  });
}

void batchnorm_rows_affine(const float* in, const float* a, const float* b, float* out, int64_t rows, int64_t C,
                           bool with_relu) {
  over_chunks(rows, C, [&](int64_t, int64_t begin, int64_t end, int64_t k, __mmask16 m) {
    const Vec va = load(a + k, m), vb = load(b + k, m);
    for (int64_t r = begin; r < end; ++r) {
      const Vec t = add(mul(load(in + r * C + k, m), va), vb);  // multiply, then add
      store(out + r * C + k, m, with_relu ? relu(t) : t);
    }
  });
}

void batchnorm_rows_backward_sums(const float* g, const float* in, const float* out, const float* mean, int64_t rows,
                                  int64_t C, float* part) {
  over_chunks(rows, C, [&](int64_t ch, int64_t begin, int64_t end, int64_t k, __mmask16 lm) {
    const Vec mu = load(mean + k, lm);
    Vec as = zero(), ad = zero();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * C + k;
      Vec m = load(g + o, lm);
      if (out) m = pass_where_positive(m, load(out + o, lm));
      as = add(as, m);
      ad = add(ad, mul(m, sub(load(in + o, lm), mu)));
    }
    store(part + ch * 2 * C + k, lm, as);
    store(part + ch * 2 * C + C + k, lm, ad);
  });
}

void batchnorm_rows_backward_dx(const float* g, const float* in, const float* out, const float* mean, const float* k1,
                                const float* k2, const float* k3, bool eval, int64_t rows, int64_t C, float* d) {
  over_chunks(rows, C, [&](int64_t, int64_t begin, int64_t end, int64_t k, __mmask16 lm) {
    const Vec s1 = load(k1 + k, lm), s2 = load(k2 + k, lm), s3 = load(k3 + k, lm);
    const Vec mu = load(mean + k, lm);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * C + k;
      Vec m = load(g + o, lm);
      if (out) m = pass_where_positive(m, load(out + o, lm));
      store(d + o, lm, eval ? mul(m, s1) : mul(s1, sub(sub(m, s2), mul(sub(load(in + o, lm), mu), s3))));
    }
  });
}

}  // namespace tailor::kernels
