#include "kernels/pool.hpp"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "util/error.hpp"

namespace tailor::kernels {

PoolKind parse_pool(const std::string& name) {
  if (name == "max") return PoolKind::max;
  if (name == "avg") return PoolKind::avg;
  if (name == "l2") return PoolKind::l2;
  throw Error("unknown --pool '" + name + "' (expected max, avg or l2)");
}

const char* pool_name(PoolKind kind) {
  switch (kind) {
    case PoolKind::avg: return "avg";
    case PoolKind::l2: return "l2";
    default: return "max";
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define TAILOR_POOL_AVX512 1
#endif

bool pool_kernels_vectorised() {
#if defined(TAILOR_POOL_AVX512)
  return true;
#else
  return false;
#endif
}

namespace {

// The scalar forms of the three pools, in the reference's order of operations.
inline float combine(PoolKind kind, float a, float b, float c, float d) {
  if (kind == PoolKind::avg) return (((a + b) + c) + d) * 0.25f;
  if (kind == PoolKind::l2) {
    const float aa = a * a, bb = b * b, cc = c * c, dd = d * d;
    return std::sqrt(((aa + bb) + cc) + dd);
  }
  const float t = b > a ? b : a, u = d > c ? d : c;
  return u > t ? u : t;
}

// Planar avg and l2 (max has its vectorised kernel below): rows of W/2 outputs, which the compiler
// vectorises across j.
void pool2x2_planar_loops(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      const float* r1 = r0 + w;
      float* out = y + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; ++j) out[j] = combine(kind, r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
    }
}

void pool2x2_planar_backward_loops(PoolKind kind, const float* x, const float* y, const float* dy, float* dx,
                                   int64_t planes, int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* base = dx + p * h * w;
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      float* d0 = base + 2 * i * w;
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = (p * ho + i) * wo + j;
        const float* in[4] = {r0 + 2 * j, r0 + 2 * j + 1, r0 + w + 2 * j, r0 + w + 2 * j + 1};
        float* out[4] = {d0 + 2 * j, d0 + 2 * j + 1, d0 + w + 2 * j, d0 + w + 2 * j + 1};
        if (kind == PoolKind::avg) {
          for (float* q : out) *q = dy[o] * 0.25f;
        } else {
          const float r = y[o] > 0.0f ? dy[o] / y[o] : 0.0f;
          for (int q = 0; q < 4; ++q) *out[q] = *in[q] * r;
        }
      }
      if (w & 1) d0[w - 1] = d0[2 * w - 1] = 0.0f;
    }
    if (h & 1) std::fill_n(base + (h - 1) * w, w, 0.0f);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Planar max.
#if defined(TAILOR_POOL_AVX512)

namespace {

// Lane indices that split 32 interleaved floats (a0 b0 a1 b1 ...) into evens and odds, and the
// inverse that interleaves two vectors again.
const __m512i kEven = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
const __m512i kOdd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
const __m512i kLow = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
const __m512i kHigh = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

// Masks for `n` of 16 outputs: their 2n inputs as two 16-lane halves (rows of 7 or 14 outputs
// are shorter than a vector, so plain vectorised loops ran their scalar tails).
struct Masks {
  __mmask16 out, lo, hi;
  explicit Masks(int64_t n) {
    const uint32_t in = n >= 16 ? 0xFFFFFFFFu : (1u << (2 * n)) - 1u;
    out = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    lo = static_cast<__mmask16>(in & 0xFFFF);
    hi = static_cast<__mmask16>(in >> 16);
  }
};

inline void load_pairs(const float* p, const Masks& m, __m512& even, __m512& odd) {
  const __m512 a = _mm512_maskz_loadu_ps(m.lo, p), b = _mm512_maskz_loadu_ps(m.hi, p + 16);
  even = _mm512_permutex2var_ps(a, kEven, b);
  odd = _mm512_permutex2var_ps(a, kOdd, b);
}

inline void store_pairs(float* p, const Masks& m, __m512 even, __m512 odd) {
  _mm512_mask_storeu_ps(p, m.lo, _mm512_permutex2var_ps(even, kLow, odd));
  _mm512_mask_storeu_ps(p + 16, m.hi, _mm512_permutex2var_ps(even, kHigh, odd));
}

// On ties the first maximum wins (a, then b, c, d), as in the reference.
void maxpool2x2_planar(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      float* out = y + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; j += 16) {
        const Masks m(wo - j);
        __m512 a, b, c, d;
        load_pairs(r0 + 2 * j, m, a, b);
        load_pairs(r0 + w + 2 * j, m, c, d);
        const __m512 top = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), a, b);
        const __m512 bottom = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, c, _CMP_GT_OQ), c, d);
        _mm512_mask_storeu_ps(out + j, m.out,
                              _mm512_mask_blend_ps(_mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ), top, bottom));
      }
    }
}

void maxpool2x2_planar_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                                int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* base = dx + p * h * w;
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      float* d0 = base + 2 * i * w;
      const float* mrow = y + (p * ho + i) * wo;
      const float* grow = dy + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; j += 16) {
        const Masks m(wo - j);
        const __m512 mx = _mm512_maskz_loadu_ps(m.out, mrow + j), g = _mm512_maskz_loadu_ps(m.out, grow + j);
        __m512 a, b, c, d;
        load_pairs(r0 + 2 * j, m, a, b);
        load_pairs(r0 + w + 2 * j, m, c, d);
        const __mmask16 ea = _mm512_cmp_ps_mask(a, mx, _CMP_EQ_OQ);
        const __mmask16 eb = _mm512_cmp_ps_mask(b, mx, _CMP_EQ_OQ) & ~ea;
        const __mmask16 ec = _mm512_cmp_ps_mask(c, mx, _CMP_EQ_OQ) & ~ea & ~eb;
        const __mmask16 ed = static_cast<__mmask16>(~(ea | eb | ec));
        store_pairs(d0 + 2 * j, m, _mm512_mask_blend_ps(ea, zero, g), _mm512_mask_blend_ps(eb, zero, g));
        store_pairs(d0 + w + 2 * j, m, _mm512_mask_blend_ps(ec, zero, g), _mm512_mask_blend_ps(ed, zero, g));
      }
      if (w & 1) d0[w - 1] = d0[2 * w - 1] = 0.0f;
    }
    if (h & 1) std::fill_n(base + (h - 1) * w, w, 0.0f);
  }
}

}  // namespace

#endif

void pool2x2_forward(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
#if defined(TAILOR_POOL_AVX512)
  if (kind == PoolKind::max) return maxpool2x2_planar(x, y, planes, h, w);
#endif
  if (kind == PoolKind::max) return ref::pool_forward(kind, x, y, planes, h, w, 2);
  pool2x2_planar_loops(kind, x, y, planes, h, w);
}

void pool2x2_backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t planes,
                      int64_t h, int64_t w) {
#if defined(TAILOR_POOL_AVX512)
  if (kind == PoolKind::max) return maxpool2x2_planar_backward(x, y, dy, dx, planes, h, w);
#endif
  if (kind == PoolKind::max) return ref::pool_backward(kind, x, y, dy, dx, planes, h, w, 2);
  pool2x2_planar_backward_loops(kind, x, y, dy, dx, planes, h, w);
}

// ---------------------------------------------------------------------------------------------
// Channels last. Each output row (n, i) is one task; within it, the window's four inputs are runs
// of C floats at x[n, 2i, 2j], x[n, 2i, 2j+1], x[n, 2i+1, 2j], x[n, 2i+1, 2j+1].
#if defined(TAILOR_POOL_AVX512)

namespace {

inline __mmask16 lanes(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u); }

// relu as batch norm computes it, std::max(v, 0): 0 where v < 0, else v.
inline __m512 relu(__m512 t) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ), t, _mm512_setzero_ps());
}

// make(k, m) gives the element-wise transform for channels k..k+15.
template <PoolKind K, class MakeTransform>
void pool_rows_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c, MakeTransform make,
                    uint8_t* winner) {
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const float* top = x + ((b * h + 2 * i) * w) * c;
    const float* bot = top + w * c;
    float* out = y + r * wo * c;
    for (int64_t j = 0; j < wo; ++j)
      for (int64_t k = 0; k < c; k += 16) {
        const __mmask16 m = lanes(c - k);
        const auto f = make(k, m);
        const int64_t o = 2 * j * c + k;
        const __m512 a = f(_mm512_maskz_loadu_ps(m, top + o)), bb = f(_mm512_maskz_loadu_ps(m, top + o + c));
        const __m512 cc = f(_mm512_maskz_loadu_ps(m, bot + o)), d = f(_mm512_maskz_loadu_ps(m, bot + o + c));
        if constexpr (K == PoolKind::avg) {
          const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, bb), cc), d);
          _mm512_mask_storeu_ps(out + j * c + k, m, _mm512_mul_ps(s, _mm512_set1_ps(0.25f)));
        } else if constexpr (K == PoolKind::l2) {
          const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(a, a), _mm512_mul_ps(bb, bb)),
                                                       _mm512_mul_ps(cc, cc)),
                                         _mm512_mul_ps(d, d));
          _mm512_mask_storeu_ps(out + j * c + k, m, _mm512_sqrt_ps(s));
        } else {
          // a, then b, c, d; a later input wins only when greater.
          const __mmask16 ab = _mm512_cmp_ps_mask(bb, a, _CMP_GT_OQ), cd = _mm512_cmp_ps_mask(d, cc, _CMP_GT_OQ);
          const __m512 t = _mm512_mask_blend_ps(ab, a, bb);
          const __m512 u = _mm512_mask_blend_ps(cd, cc, d);
          const __mmask16 ut = _mm512_cmp_ps_mask(u, t, _CMP_GT_OQ);
          _mm512_mask_storeu_ps(out + j * c + k, m, _mm512_mask_blend_ps(ut, t, u));
          if (winner) {  // (ut ? 2 : 0) + (ut ? cd : ab)
            const __m512i low = _mm512_maskz_mov_epi32(static_cast<__mmask16>((ut & cd) | (~ut & ab)), one);
            const __m512i idx = _mm512_add_epi32(_mm512_maskz_mov_epi32(ut, two), low);
            _mm_mask_storeu_epi8(winner + r * wo * c + j * c + k, m, _mm512_maskz_cvtepi32_epi8(m, idx));
          }
        }
      }
  }
}

template <PoolKind K>
void forward_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t h, int64_t w,
                  int64_t c, uint8_t* winner) {
  if (!scale) {
    pool_rows_nhwc<K>(x, y, n, h, w, c, [](int64_t, __mmask16) { return [](__m512 v) { return v; }; }, winner);
    return;
  }
  pool_rows_nhwc<K>(x, y, n, h, w, c, [&](int64_t k, __mmask16 m) {
    const __m512 a = _mm512_maskz_loadu_ps(m, scale + k), b = _mm512_maskz_loadu_ps(m, shift + k);
    return [=](__m512 v) { return relu(_mm512_add_ps(_mm512_mul_ps(v, a), b)); };  // multiply, then add
  }, winner);
}

void forward_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y, int64_t n,
                  int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  switch (kind) {
    case PoolKind::avg: return forward_nhwc<PoolKind::avg>(x, scale, shift, y, n, h, w, c, nullptr);
    case PoolKind::l2: return forward_nhwc<PoolKind::l2>(x, scale, shift, y, n, h, w, c, nullptr);
    default: return forward_nhwc<PoolKind::max>(x, scale, shift, y, n, h, w, c, winner);
  }
}

// The pool's gradient at the four inputs of the window whose output is at offset `out`, channels
// k..k+15: max from the recorded winner (or, without one, the first input equal to the output),
// avg dy/4, l2 dy * x / y (0 where y == 0). With the tail's affine + relu (Affine), the inputs
// are t = x * scale + shift and the gradient passes only where t > 0: then m = dloss/dt. The
// pool and the affine are template arguments: no branch on them in the inner loops.
template <PoolKind K, bool Affine>
struct Router {
  const float *x, *scale, *shift, *y, *dy;
  const uint8_t* winner;

  // at[4]: the offsets of the window's inputs; out: the output's offset.
  inline void operator()(const int64_t at[4], int64_t out, int64_t k, __mmask16 lm, __m512 m[4]) const {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 g = _mm512_maskz_loadu_ps(lm, dy + out + k);
    if constexpr (K == PoolKind::max) {
      __mmask16 pass = 0xFFFF;
      if constexpr (Affine) pass = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, y + out + k), zero, _CMP_GT_OQ);
      if (winner) {
        const __m512i win = _mm512_maskz_cvtepu8_epi32(lm, _mm_maskz_loadu_epi8(lm, winner + out + k));
        for (int q = 0; q < 4; ++q) m[q] = _mm512_maskz_mov_ps(pass & _mm512_cmpeq_epi32_mask(win, _mm512_set1_epi32(q)), g);
        return;
      }
      const __m512 mx = _mm512_maskz_loadu_ps(lm, y + out + k);
      __mmask16 taken = 0;
      for (int q = 0; q < 4; ++q) {
        const __mmask16 eq = q == 3 ? static_cast<__mmask16>(~taken)
                                    : _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, x + at[q] + k), mx, _CMP_EQ_OQ) & ~taken;
        taken |= eq;
        m[q] = _mm512_maskz_mov_ps(pass & eq, g);
      }
    } else {
      __m512 t[4];
      for (int q = 0; q < 4; ++q) t[q] = _mm512_maskz_loadu_ps(lm, x + at[q] + k);
      if constexpr (Affine) {
        const __m512 a = _mm512_maskz_loadu_ps(lm, scale + k), b = _mm512_maskz_loadu_ps(lm, shift + k);
        for (int q = 0; q < 4; ++q) t[q] = _mm512_add_ps(_mm512_mul_ps(t[q], a), b);
      }
      if constexpr (K == PoolKind::avg) {
        const __m512 share = _mm512_mul_ps(g, _mm512_set1_ps(0.25f));
        for (int q = 0; q < 4; ++q)
          m[q] = Affine ? _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t[q], zero, _CMP_GT_OQ), share) : share;
      } else {
        const __m512 yy = _mm512_maskz_loadu_ps(lm, y + out + k);
        const __m512 ratio = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(yy, zero, _CMP_GT_OQ), g, yy);  // 0 where y == 0
        for (int q = 0; q < 4; ++q)
          m[q] = Affine ? _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(t[q], zero, _CMP_GT_OQ), t[q], ratio)
                        : _mm512_mul_ps(t[q], ratio);
      }
    }
  }
};

template <PoolKind K>
void backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h, int64_t w,
                   int64_t c) {
  const int64_t ho = h / 2, wo = w / 2;
  const Router<K, false> route{x, nullptr, nullptr, y, dy, nullptr};
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const int64_t top = ((b * h + 2 * i) * w) * c, bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j)
      for (int64_t k = 0; k < c; k += 16) {
        const __mmask16 lm = lanes(c - k);
        const int64_t at[4] = {top + 2 * j * c, top + 2 * j * c + c, bot + 2 * j * c, bot + 2 * j * c + c};
        __m512 m[4];
        route(at, (r * wo + j) * c, k, lm, m);
        for (int q = 0; q < 4; ++q) _mm512_mask_storeu_ps(dx + at[q] + k, lm, m[q]);
      }
    if (w & 1) {  // the last column is in no window
      std::fill_n(dx + top + (w - 1) * c, c, 0.0f);
      std::fill_n(dx + bot + (w - 1) * c, c, 0.0f);
    }
  }
  if (h & 1)  // the last row of each image is in no window
    for (int64_t b = 0; b < n; ++b) std::fill_n(dx + ((b * h + h - 1) * w) * c, w * c, 0.0f);
}

// One task per row of windows (n, i). Pass 1 sums m and m * (x - mean) per task and 16 channels;
// pass 2 writes dx from them. The pool's full-size input gradient is never written.
template <PoolKind K>
void tail_sums(const TailBackward& tb, float* part) {
  const int64_t C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2;
  const Router<K, true> route{tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
  const float *mean = tb.mean, *xin = tb.x;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tb.tasks(); ++t) {
    const int64_t b = t / ho, i = t % ho;
    const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
    for (int64_t k = 0; k < C; k += 16) {
      const __mmask16 lm = lanes(C - k);
      const __m512 mu = _mm512_maskz_loadu_ps(lm, mean + k);
      __m512 as = _mm512_setzero_ps(), ad = _mm512_setzero_ps(), m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        route(at, out + j * C, k, lm, m);
        for (int q = 0; q < 4; ++q) {
          as = _mm512_add_ps(as, m[q]);
          ad = _mm512_add_ps(ad, _mm512_mul_ps(m[q], _mm512_sub_ps(_mm512_maskz_loadu_ps(lm, xin + at[q] + k), mu)));
        }
      }
      _mm512_mask_storeu_ps(part + t * 2 * C + k, lm, as);
      _mm512_mask_storeu_ps(part + t * 2 * C + C + k, lm, ad);
    }
  }
}

template <PoolKind K>
void tail_dx(const TailBackward& tb, const float* k1, const float* k2, const float* k3, float* d) {
  const int64_t n = tb.n, C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2, tasks = tb.tasks();
  const Router<K, true> route{tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
  const float *mean = tb.mean, *xin = tb.x;
  // dx at one input from its m.
  auto put = [&](int64_t at, int64_t k, __mmask16 lm, __m512 m, __m512 s1, __m512 s2, __m512 s3, __m512 mu) {
    const __m512 centred = _mm512_sub_ps(_mm512_maskz_loadu_ps(lm, xin + at + k), mu);
    _mm512_mask_storeu_ps(d + at + k, lm, _mm512_mul_ps(s1, _mm512_sub_ps(_mm512_sub_ps(m, s2), _mm512_mul_ps(centred, s3))));
  };
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks + (h & 1 ? n : 0); ++t) {
    for (int64_t k = 0; k < C; k += 16) {
      const __mmask16 lm = lanes(C - k);
      const __m512 zero = _mm512_setzero_ps();
      const __m512 s1 = _mm512_maskz_loadu_ps(lm, k1 + k), s2 = _mm512_maskz_loadu_ps(lm, k2 + k);
      const __m512 s3 = _mm512_maskz_loadu_ps(lm, k3 + k), mu = _mm512_maskz_loadu_ps(lm, mean + k);
      if (t >= tasks) {  // the last row of image t - tasks, in no window (odd h)
        const int64_t row = ((t - tasks) * h + h - 1) * w * C;
        for (int64_t j = 0; j < w; ++j) put(row + j * C, k, lm, zero, s1, s2, s3, mu);
        continue;
      }
      const int64_t b = t / ho, i = t % ho;
      const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
      __m512 m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        route(at, out + j * C, k, lm, m);
        for (int q = 0; q < 4; ++q) put(at[q], k, lm, m[q], s1, s2, s3, mu);
      }
      if (w & 1)  // the last column, in no window
        for (int64_t r : {top, top + w * C}) put(r + (w - 1) * C, k, lm, zero, s1, s2, s3, mu);
    }
  }
}

}  // namespace

void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c) {
  switch (kind) {
    case PoolKind::avg: return backward_nhwc<PoolKind::avg>(x, y, dy, dx, n, h, w, c);
    case PoolKind::l2: return backward_nhwc<PoolKind::l2>(x, y, dy, dx, n, h, w, c);
    default: return backward_nhwc<PoolKind::max>(x, y, dy, dx, n, h, w, c);
  }
}

void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& tb, float* part) {
  switch (tb.kind) {
    case PoolKind::avg: return tail_sums<PoolKind::avg>(tb, part);
    case PoolKind::l2: return tail_sums<PoolKind::l2>(tb, part);
    default: return tail_sums<PoolKind::max>(tb, part);
  }
}

void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& tb, const float* k1, const float* k2, const float* k3,
                                          float* dx) {
  switch (tb.kind) {
    case PoolKind::avg: return tail_dx<PoolKind::avg>(tb, k1, k2, k3, dx);
    case PoolKind::l2: return tail_dx<PoolKind::l2>(tb, k1, k2, k3, dx);
    default: return tail_dx<PoolKind::max>(tb, k1, k2, k3, dx);
  }
}

#else  // no AVX-512 (F, BW, VL): the same passes as plain loops over the C contiguous channels

// No allocation here (a training step allocates nothing after its first batch): the reference
// kernels transpose through temporaries, so they are not the fallback.
namespace {

// The pool's gradient at the window's four inputs, channel k (see the AVX-512 Router).
struct Router {
  PoolKind kind;
  const float *x, *scale, *shift, *y, *dy;
  const uint8_t* winner;

  inline void operator()(const int64_t at[4], int64_t out, int64_t k, float m[4]) const {
    const float g = dy[out + k];
    float t[4];
    for (int q = 0; q < 4; ++q) t[q] = scale ? x[at[q] + k] * scale[k] + shift[k] : x[at[q] + k];
    if (kind == PoolKind::max) {
      const bool pass = !scale || y[out + k] > 0.0f;
      int win = 3;
      if (winner) {
        win = winner[out + k];
      } else {
        for (int q = 0; q < 3; ++q)
          if (t[q] == y[out + k]) { win = q; break; }
      }
      for (int q = 0; q < 4; ++q) m[q] = (pass && q == win) ? g : 0.0f;
      return;
    }
    if (kind == PoolKind::avg) {
      for (int q = 0; q < 4; ++q) m[q] = (!scale || t[q] > 0.0f) ? g * 0.25f : 0.0f;
      return;
    }
    const float ratio = y[out + k] > 0.0f ? g / y[out + k] : 0.0f;
    for (int q = 0; q < 4; ++q) m[q] = (!scale || t[q] > 0.0f) ? t[q] * ratio : 0.0f;
  }
};

void forward_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y, int64_t n,
                  int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const float* top = x + ((b * h + 2 * i) * w) * c;
    const float* bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j) {
      const float *pa = top + 2 * j * c, *pb = pa + c, *pc = bot + 2 * j * c, *pd = pc + c;
      float* out = y + (r * wo + j) * c;
      uint8_t* win = winner && kind == PoolKind::max ? winner + (r * wo + j) * c : nullptr;
      for (int64_t k = 0; k < c; ++k) {
        auto f = [&](float v) { return scale ? std::max(v * scale[k] + shift[k], 0.0f) : v; };
        const float a = f(pa[k]), bb = f(pb[k]), cc = f(pc[k]), d = f(pd[k]);
        out[k] = combine(kind, a, bb, cc, d);
        if (win) {
          const bool ab = bb > a, cd = d > cc, ut = (cd ? d : cc) > (ab ? bb : a);
          win[k] = static_cast<uint8_t>(ut ? 2 + cd : ab);
        }
      }
    }
  }
}

}  // namespace

void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c) {
  const int64_t ho = h / 2, wo = w / 2;
  const Router route{kind, x, nullptr, nullptr, y, dy, nullptr};
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const int64_t top = ((b * h + 2 * i) * w) * c, bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j) {
      const int64_t at[4] = {top + 2 * j * c, top + 2 * j * c + c, bot + 2 * j * c, bot + 2 * j * c + c};
      for (int64_t k = 0; k < c; ++k) {
        float m[4];
        route(at, (r * wo + j) * c, k, m);
        for (int q = 0; q < 4; ++q) dx[at[q] + k] = m[q];
      }
    }
    if (w & 1) {
      std::fill_n(dx + top + (w - 1) * c, c, 0.0f);
      std::fill_n(dx + bot + (w - 1) * c, c, 0.0f);
    }
  }
  if (h & 1)
    for (int64_t b = 0; b < n; ++b) std::fill_n(dx + ((b * h + h - 1) * w) * c, w * c, 0.0f);
}

void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& tb, float* part) {
  const int64_t C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2;
  const Router route{tb.kind, tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tb.tasks(); ++t) {
    const int64_t b = t / ho, i = t % ho;
    const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
    float* as = part + t * 2 * C;
    float* ad = as + C;
    std::fill_n(as, 2 * C, 0.0f);
    for (int64_t j = 0; j < wo; ++j) {
      const int64_t in = top + 2 * j * C;
      const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
      for (int64_t k = 0; k < C; ++k) {
        float m[4];
        route(at, out + j * C, k, m);
        for (int q = 0; q < 4; ++q) {
          as[k] += m[q];
          ad[k] += m[q] * (tb.x[at[q] + k] - tb.mean[k]);
        }
      }
    }
  }
}

void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& tb, const float* k1, const float* k2, const float* k3,
                                          float* d) {
  const int64_t n = tb.n, C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2, tasks = tb.tasks();
  const Router route{tb.kind, tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
  auto put = [&](int64_t at, int64_t k, float m) {
    d[at + k] = k1[k] * ((m - k2[k]) - (tb.x[at + k] - tb.mean[k]) * k3[k]);
  };
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks + (h & 1 ? n : 0); ++t) {
    if (t >= tasks) {
      const int64_t row = ((t - tasks) * h + h - 1) * w * C;
      for (int64_t j = 0; j < w; ++j)
        for (int64_t k = 0; k < C; ++k) put(row + j * C, k, 0.0f);
      continue;
    }
    const int64_t b = t / ho, i = t % ho;
    const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
    for (int64_t j = 0; j < wo; ++j) {
      const int64_t in = top + 2 * j * C;
      const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
      for (int64_t k = 0; k < C; ++k) {
        float m[4];
        route(at, out + j * C, k, m);
        for (int q = 0; q < 4; ++q) put(at[q], k, m[q]);
      }
    }
    if (w & 1)
      for (int64_t r : {top, top + w * C})
        for (int64_t k = 0; k < C; ++k) put(r + (w - 1) * C, k, 0.0f);
  }
}

#endif

// Both builds define forward_nhwc(kind, x, scale or null, shift, y, ...) above.
void pool2x2_forward_nhwc(PoolKind kind, const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                          uint8_t* winner) {
  forward_nhwc(kind, x, nullptr, nullptr, y, n, h, w, c, winner);
}

void affine_relu_pool2x2_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y,
                              int64_t n, int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  forward_nhwc(kind, x, scale, shift, y, n, h, w, c, winner);
}

void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t s = h * w;
#pragma omp parallel for schedule(static) if (n * c * s > 65536)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < s; ++p)
      for (int64_t k = 0; k < c; ++k) y[(b * s + p) * c + k] = x[(b * c + k) * s + p];
}

void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t s = h * w;
#pragma omp parallel for schedule(static) if (n * c * s > 65536)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t p = 0; p < s; ++p) y[(b * c + k) * s + p] = x[(b * s + p) * c + k];
}

}  // namespace tailor::kernels
