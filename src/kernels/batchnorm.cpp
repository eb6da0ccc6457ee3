// Batch norm over rows (kernels/batchnorm.hpp), compiled for each instruction set of
// kernels/isa.hpp by Google Highway: the loops run over rows and across the contiguous channels a
// vector at a time (16 lanes with AVX-512, 8 with AVX2, 4 on the baseline), one register per group
// kept in place across a chunk's rows. Each channel's arithmetic is the same on every path and in
// the reference: one lane per channel, rows in order.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/batchnorm.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>

#include "kernels/batchnorm.hpp"
#include "kernels/lanes-inl.h"
#include "kernels/parallel.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

// The loop every kernel here shares: the chunks [lo, hi) of kBatchNormChunk rows (the threads take
// ranges of chunks, kernels/parallel.hpp: the same chunks for any thread count), and within a
// chunk the channels a group at a time: body(chunk, first row, end row, first channel, group).
template <class Body>
void over_chunks(int64_t rows, int64_t C, int64_t lo, int64_t hi, Body body) {
  const int64_t step = static_cast<int64_t>(lanes());
  for (int64_t ch = lo; ch < hi; ++ch) {
    const int64_t begin = ch * kBatchNormChunk, end = std::min(rows, begin + kBatchNormChunk);
    for (int64_t k = 0; k < C; k += step) body(ch, begin, end, k, group(C - k));
  }
}

void rows_sums(const float* in, int64_t rows, int64_t C, const float* centre, float* part, int64_t lo, int64_t hi) {
  over_chunks(rows, C, lo, hi, [&](int64_t ch, int64_t begin, int64_t end, int64_t k, const Group& g) {
    const VF mu = centre ? load(g, centre + k) : hn::Zero(DF());
    VF acc = hn::Zero(DF());
    for (int64_t r = begin; r < end; ++r) {
      const VF v = load(g, in + r * C + k);
      if (!centre) {
        acc = hn::Add(acc, v);
      } else {
        const VF d = hn::Sub(v, mu);
        acc = hn::Add(acc, hn::Mul(d, d));
      }
    }
    store(g, acc, part + ch * C + k);
  });
}

void rows_affine(const float* in, const float* a, const float* b, float* out, int64_t rows, int64_t C, bool with_relu,
                 int64_t lo, int64_t hi) {
  over_chunks(rows, C, lo, hi, [&](int64_t, int64_t begin, int64_t end, int64_t k, const Group& g) {
    const VF va = load(g, a + k), vb = load(g, b + k);
    for (int64_t r = begin; r < end; ++r) {
      const VF t = hn::Add(hn::Mul(load(g, in + r * C + k), va), vb);  // multiply, then add
      store(g, with_relu ? relu(t) : t, out + r * C + k);
    }
  });
}

void rows_backward_sums(const float* dy, const float* in, const float* relu_y, const float* mean, int64_t rows,
                        int64_t C, float* part, int64_t lo, int64_t hi) {
  over_chunks(rows, C, lo, hi, [&](int64_t ch, int64_t begin, int64_t end, int64_t k, const Group& g) {
    const VF mu = load(g, mean + k);
    VF as = hn::Zero(DF()), ad = hn::Zero(DF());
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * C + k;
      VF m = load(g, dy + o);
      if (relu_y) m = pass_where_positive(m, load(g, relu_y + o));
      as = hn::Add(as, m);
      ad = hn::Add(ad, hn::Mul(m, hn::Sub(load(g, in + o), mu)));
    }
    store(g, as, part + ch * 2 * C + k);
    store(g, ad, part + ch * 2 * C + C + k);
  });
}

void rows_backward_dx(const float* dy, const float* in, const float* relu_y, const float* mean, const float* k1,
                      const float* k2, const float* k3, bool eval, int64_t rows, int64_t C, float* dx, int64_t lo,
                      int64_t hi) {
  over_chunks(rows, C, lo, hi, [&](int64_t, int64_t begin, int64_t end, int64_t k, const Group& g) {
    const VF s1 = load(g, k1 + k), s2 = load(g, k2 + k), s3 = load(g, k3 + k), mu = load(g, mean + k);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * C + k;
      VF m = load(g, dy + o);
      if (relu_y) m = pass_where_positive(m, load(g, relu_y + o));
      const VF d = eval ? hn::Mul(m, s1)
                        : hn::Mul(s1, hn::Sub(hn::Sub(m, s2), hn::Mul(hn::Sub(load(g, in + o), mu), s3)));
      store(g, d, dx + o);
    }
  });
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(rows_sums);
HWY_EXPORT(rows_affine);
HWY_EXPORT(rows_backward_sums);
HWY_EXPORT(rows_backward_dx);

// Each over the chunks of rows, a range of them per thread.
void batchnorm_rows_sums(const float* x, int64_t rows, int64_t c, const float* centre, float* part) {
  in_parallel(batchnorm_chunks(rows), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(rows_sums)(x, rows, c, centre, part, lo, hi);
  });
}

void batchnorm_rows_affine(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                           bool relu) {
  in_parallel(batchnorm_chunks(rows), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(rows_affine)(x, scale, shift, y, rows, c, relu, lo, hi);
  });
}

void batchnorm_rows_backward_sums(const float* dy, const float* x, const float* relu_y, const float* mean,
                                  int64_t rows, int64_t c, float* part) {
  in_parallel(batchnorm_chunks(rows), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(rows_backward_sums)(dy, x, relu_y, mean, rows, c, part, lo, hi);
  });
}

void batchnorm_rows_backward_dx(const float* dy, const float* x, const float* relu_y, const float* mean,
                                const float* k1, const float* k2, const float* k3, bool eval, int64_t rows, int64_t c,
                                float* dx) {
  in_parallel(batchnorm_chunks(rows), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(rows_backward_dx)(dy, x, relu_y, mean, k1, k2, k3, eval, rows, c, dx, lo, hi);
  });
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
