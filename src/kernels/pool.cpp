#include "kernels/pool.hpp"

#include <algorithm>
#include <bit>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tailor::kernels {

#if defined(__AVX512F__)

namespace {

// Lane indices that split 32 interleaved floats (a0 b0 a1 b1 ...) into evens and odds, and the
// inverse that interleaves two vectors again.
const __m512i kEven = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
const __m512i kOdd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
const __m512i kLow = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
const __m512i kHigh = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

// Masks for `n` of 16 outputs: their 2n inputs as two 16-lane halves.
struct Masks {
  __mmask16 out, lo, hi;
  explicit Masks(int64_t n) {
    const uint32_t in = n >= 16 ? 0xFFFFFFFFu : (1u << (2 * n)) - 1u;
    out = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    lo = static_cast<__mmask16>(in & 0xFFFF);
    hi = static_cast<__mmask16>(in >> 16);
  }
};

// Loads 2n interleaved floats and splits them into (even, odd) lanes.
inline void load_pairs(const float* p, const Masks& m, __m512& even, __m512& odd) {
  const __m512 a = _mm512_maskz_loadu_ps(m.lo, p), b = _mm512_maskz_loadu_ps(m.hi, p + 16);
  even = _mm512_permutex2var_ps(a, kEven, b);
  odd = _mm512_permutex2var_ps(a, kOdd, b);
}

inline void store_pairs(float* p, const Masks& m, __m512 even, __m512 odd) {
  _mm512_mask_storeu_ps(p, m.lo, _mm512_permutex2var_ps(even, kLow, odd));
  _mm512_mask_storeu_ps(p + 16, m.hi, _mm512_permutex2var_ps(even, kHigh, odd));
}

// y = max over each 2x2 window of f(x), plane by plane; make(p) gives plane p's element-wise f.
// On ties the first maximum wins (a, then b, c, d), as in the reference.
template <class MakeTransform>
void pool_windows(const float* x, float* y, int64_t planes, int64_t h, int64_t w, MakeTransform make) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const auto f = make(p);
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      float* out = y + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; j += 16) {
        const Masks m(wo - j);
        __m512 a, b, c, d;
        load_pairs(r0 + 2 * j, m, a, b);
        load_pairs(r0 + w + 2 * j, m, c, d);
        a = f(a), b = f(b), c = f(c), d = f(d);
        const __m512 top = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), a, b);
        const __m512 bottom = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, c, _CMP_GT_OQ), c, d);
        _mm512_mask_storeu_ps(out + j, m.out, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ), top, bottom));
      }
    }
  }
}

}  // namespace

void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  pool_windows(x, y, planes, h, w, [](int64_t) { return [](__m512 v) { return v; }; });
}

void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
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
        // Each window's gradient goes to the first of its inputs equal to the maximum.
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

void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w) {
  pool_windows(x, y, n * c, h, w, [&](int64_t p) {
    const __m512 a = _mm512_set1_ps(scale[p % c]), b = _mm512_set1_ps(shift[p % c]), zero = _mm512_setzero_ps();
    // Multiply, add, then relu as batch norm computes it, std::max(v, 0): 0 where v < 0, else v.
    return [=](__m512 v) {
      const __m512 t = _mm512_add_ps(_mm512_mul_ps(v, a), b);
      return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), t, zero);
    };
  });
}

#else  // no AVX-512: the reference loops

void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  ref::maxpool2x2_forward(x, y, planes, h, w);
}
void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                         int64_t w) {
  ref::maxpool2x2_backward(x, y, dy, dx, planes, h, w);
}
void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w) {
  ref::affine_relu_maxpool2x2(x, scale, shift, y, n, c, h, w);
}

#endif

// Channels last. Each output row (n, i) is one task; within it, the window's four inputs are
// runs of C floats at x[n, 2i, 2j], x[n, 2i, 2j+1], x[n, 2i+1, 2j], x[n, 2i+1, 2j+1], taken 16
// channels at a time (masked loads and stores for the last, partial group).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)  // byte masks for the winners
namespace {

inline __mmask16 lanes(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u); }

// make(k) gives the element-wise transform for channels k..k+15.
template <class MakeTransform>
void pool_rows_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c, MakeTransform make,
                    uint8_t* winner = nullptr) {
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
        // As the planar kernels: a, then b, c, d; a later input wins only when greater.
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

}  // namespace

void maxpool2x2_forward_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  pool_rows_nhwc(x, y, n, h, w, c, [](int64_t, __mmask16) { return [](__m512 v) { return v; }; }, winner);
}

void affine_relu_maxpool2x2_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n,
                                 int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  pool_rows_nhwc(x, y, n, h, w, c, [&](int64_t k, __mmask16 m) {
    const __m512 a = _mm512_maskz_loadu_ps(m, scale + k), b = _mm512_maskz_loadu_ps(m, shift + k);
    const __m512 zero = _mm512_setzero_ps();
    // Multiply, add, then batch norm's relu, std::max(v, 0): 0 where v < 0, else v.
    return [=](__m512 v) {
      const __m512 t = _mm512_add_ps(_mm512_mul_ps(v, a), b);
      return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), t, zero);
    };
  }, winner);
}

void maxpool2x2_backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                              int64_t w, int64_t c) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const int64_t top = ((b * h + 2 * i) * w) * c, bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j)
      for (int64_t k = 0; k < c; k += 16) {
        const __mmask16 lm = lanes(c - k);
        const int64_t o = 2 * j * c + k;
        const __m512 mx = _mm512_maskz_loadu_ps(lm, y + (r * wo + j) * c + k);
        const __m512 g = _mm512_maskz_loadu_ps(lm, dy + (r * wo + j) * c + k);
        // The gradient goes to the first input equal to the maximum.
        const __mmask16 ea = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, x + top + o), mx, _CMP_EQ_OQ);
        const __mmask16 eb = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, x + top + o + c), mx, _CMP_EQ_OQ) & ~ea;
        const __mmask16 ec =
            _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, x + bot + o), mx, _CMP_EQ_OQ) & ~ea & ~eb;
        const __mmask16 ed = static_cast<__mmask16>(~(ea | eb | ec));
        _mm512_mask_storeu_ps(dx + top + o, lm, _mm512_maskz_mov_ps(ea, g));
        _mm512_mask_storeu_ps(dx + top + o + c, lm, _mm512_maskz_mov_ps(eb, g));
        _mm512_mask_storeu_ps(dx + bot + o, lm, _mm512_maskz_mov_ps(ec, g));
        _mm512_mask_storeu_ps(dx + bot + o + c, lm, _mm512_maskz_mov_ps(ed, g));
      }
    if (w & 1) {  // the last column is in no window
      std::fill_n(dx + top + (w - 1) * c, c, 0.0f);
      std::fill_n(dx + bot + (w - 1) * c, c, 0.0f);
    }
  }
  if (h & 1)  // the last row of each image is in no window
    for (int64_t b = 0; b < n; ++b) std::fill_n(dx + ((b * h + h - 1) * w) * c, w * c, 0.0f);
}

#else  // no AVX-512 (F, BW, VL): the same passes as plain loops over the channels

// No allocation here (a training step allocates nothing after its first batch): the reference
// kernels transpose to planes through temporaries, so they are not the fallback. The inner loops
// run over the C contiguous channels, which the compiler vectorises for the build's ISA (AVX2).
namespace {

// f(k, v) transforms input v of channel k; the winner rule is the AVX-512 kernel's: a, then b,
// c, d, a later input winning only when greater.
template <class Transform>
void pool_rows_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c, Transform f,
                    uint8_t* winner) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const float* top = x + ((b * h + 2 * i) * w) * c;
    const float* bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j) {
      const float *pa = top + 2 * j * c, *pb = pa + c, *pc = bot + 2 * j * c, *pd = pc + c;
      float* out = y + (r * wo + j) * c;
      uint8_t* win = winner ? winner + (r * wo + j) * c : nullptr;
      for (int64_t k = 0; k < c; ++k) {
        const float a = f(k, pa[k]), bb = f(k, pb[k]), cc = f(k, pc[k]), d = f(k, pd[k]);
        const bool ab = bb > a, cd = d > cc;
        const float t = ab ? bb : a, u = cd ? d : cc;
        const bool ut = u > t;
        out[k] = ut ? u : t;
        if (win) win[k] = static_cast<uint8_t>(ut ? 2 + cd : ab);
      }
    }
  }
}

}  // namespace

void maxpool2x2_forward_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  pool_rows_nhwc(x, y, n, h, w, c, [](int64_t, float v) { return v; }, winner);
}

void affine_relu_maxpool2x2_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n,
                                 int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  // Multiply, add, then batch norm's relu, std::max(v, 0), as the reference.
  pool_rows_nhwc(x, y, n, h, w, c, [=](int64_t k, float v) { return std::max(v * scale[k] + shift[k], 0.0f); },
                 winner);
}

void maxpool2x2_backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                              int64_t w, int64_t c) {
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ho; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const int64_t top = ((b * h + 2 * i) * w) * c, bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j) {
      const int64_t o = 2 * j * c, out = (r * wo + j) * c;
      for (int64_t k = 0; k < c; ++k) {  // the gradient goes to the first input equal to the maximum
        const float mx = y[out + k], g = dy[out + k];
        const bool ea = x[top + o + k] == mx;
        const bool eb = !ea && x[top + o + c + k] == mx;
        const bool ec = !ea && !eb && x[bot + o + k] == mx;
        const bool ed = !ea && !eb && !ec;
        dx[top + o + k] = ea ? g : 0.0f;
        dx[top + o + c + k] = eb ? g : 0.0f;
        dx[bot + o + k] = ec ? g : 0.0f;
        dx[bot + o + c + k] = ed ? g : 0.0f;
      }
    }
    if (w & 1) {  // the last column is in no window
      std::fill_n(dx + top + (w - 1) * c, c, 0.0f);
      std::fill_n(dx + bot + (w - 1) * c, c, 0.0f);
    }
  }
  if (h & 1)  // the last row of each image is in no window
    for (int64_t b = 0; b < n; ++b) std::fill_n(dx + ((b * h + h - 1) * w) * c, w * c, 0.0f);
}

#endif

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
