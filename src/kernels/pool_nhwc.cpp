// Channels-last 2x2 pools and the fused block tail (kernels/pool.hpp), compiled for each
// instruction set of kernels/isa.hpp by Google Highway. Each output row (n, i) is one task; within
// it, a window's four inputs are runs of C contiguous floats at x[n, 2i, 2j], x[n, 2i, 2j+1],
// x[n, 2i+1, 2j], x[n, 2i+1, 2j+1], pooled a vector of channels at a time (the last group of a
// row of C masked). Every lane computes what the reference computes for its channel, in the same
// order of operations, so all paths give the same bits.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/pool_nhwc.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>

#include "kernels/lanes-inl.h"
#include "kernels/parallel.hpp"
#include "kernels/pool.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

inline MF all_lanes() { return hn::FirstN(DF(), lanes()); }
inline MF no_lanes() { return hn::FirstN(DF(), 0); }

// The pool of a window's four (transformed) inputs: avg and l2.
template <PoolKind K>
inline VF combine(VF a, VF b, VF c, VF d) {
  if constexpr (K == PoolKind::avg) return hn::Mul(hn::Add(hn::Add(hn::Add(a, b), c), d), hn::Set(DF(), 0.25f));
  return hn::Sqrt(hn::Add(hn::Add(hn::Add(hn::Mul(a, a), hn::Mul(b, b)), hn::Mul(c, c)), hn::Mul(d, d)));
}

// Max: a, then b, c, d; a later input wins only when greater. winner = which (0..3):
// (ut ? 2 : 0) + (ut ? cd : ab).
inline VF max_of(VF a, VF b, VF c, VF d, VI& winner) {
  const DI di;
  const MF ab = hn::Gt(b, a), cd = hn::Gt(d, c);
  const VF t = hn::IfThenElse(ab, b, a), u = hn::IfThenElse(cd, d, c);
  const MF ut = hn::Gt(u, t);
  const MF low = hn::Or(hn::And(ut, cd), hn::AndNot(ut, ab));
  winner = hn::Add(hn::IfThenElseZero(hn::RebindMask(di, ut), hn::Set(di, 2)),
                   hn::IfThenElseZero(hn::RebindMask(di, low), hn::Set(di, 1)));
  return hn::IfThenElse(ut, u, t);
}

// Forward: y = pool(f(x)), f the identity or (Affine) the tail's affine + relu,
// t = x * scale + shift (multiply, then add), max(t, 0). Pool and affine are template arguments.
// Output rows [lo, hi) of the n * h/2.
template <PoolKind K, bool Affine>
void forward(const float* x, const float* scale, const float* shift, float* y, int64_t h, int64_t w, int64_t c,
             uint8_t* winner, int64_t lo, int64_t hi) {
  const int64_t ho = h / 2, wo = w / 2, step = static_cast<int64_t>(lanes());
  for (int64_t r = lo; r < hi; ++r) {
    const int64_t b = r / ho, i = r % ho;
    const float* top = x + ((b * h + 2 * i) * w) * c;
    const float* bot = top + w * c;
    float* out = y + r * wo * c;
    uint8_t* win = winner ? winner + r * wo * c : nullptr;
    for (int64_t k = 0; k < c; k += step) {
      const Group g = group(c - k);
      VF sa = hn::Zero(DF()), sb = sa;
      if constexpr (Affine) sa = load(g, scale + k), sb = load(g, shift + k);
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = 2 * j * c + k;
        VF in[4] = {load(g, top + o), load(g, top + o + c), load(g, bot + o), load(g, bot + o + c)};
        if constexpr (Affine)
          for (VF& v : in) v = relu(hn::Add(hn::Mul(v, sa), sb));
        if constexpr (K == PoolKind::max) {
          VI which;
          store(g, max_of(in[0], in[1], in[2], in[3], which), out + j * c + k);
          if (win) store_bytes(g, which, win + j * c + k);
        } else {
          store(g, combine<K>(in[0], in[1], in[2], in[3]), out + j * c + k);
        }
      }
    }
  }
}

// The pool's gradient at the four inputs of the window whose output is at offset `out`, for one
// group of channels: max from the recorded winner (or, without one, the first input equal to the
// output), avg dy/4, l2 dy * t / y (0 where y == 0). With the tail's affine + relu (Affine) the
// inputs are t = x * scale + shift and the gradient passes only where t > 0 (max: where y > 0):
// then m = dloss/dt. Pool and affine are template arguments: no branch on them in the loops.
template <PoolKind K, bool Affine>
struct Router {
  const float *x, *scale, *shift, *y, *dy;
  const uint8_t* winner;

  inline void operator()(const int64_t at[4], int64_t out, int64_t k, const Group& g, VF m[4]) const {
    const DF d;
    const VF zero = hn::Zero(d), grad = load(g, dy + out + k);
    VF t[4];
    auto inputs = [&] {
      for (int q = 0; q < 4; ++q) t[q] = load(g, x + at[q] + k);
      if constexpr (Affine) {
        const VF a = load(g, scale + k), b = load(g, shift + k);
        for (int q = 0; q < 4; ++q) t[q] = hn::Add(hn::Mul(t[q], a), b);
      }
    };
    if constexpr (K == PoolKind::max) {
      MF pass = all_lanes();
      if constexpr (Affine) pass = hn::Gt(load(g, y + out + k), zero);
      if (winner) {
        const DI di;
        const VI win = load_bytes(g, winner + out + k);
        for (int q = 0; q < 4; ++q)
          m[q] = hn::IfThenElseZero(hn::And(pass, hn::RebindMask(d, hn::Eq(win, hn::Set(di, q)))), grad);
        return;
      }
      inputs();
      const VF mx = load(g, y + out + k);
      MF taken = no_lanes();
      for (int q = 0; q < 4; ++q) {
        const MF eq = q == 3 ? hn::Not(taken) : hn::AndNot(taken, hn::Eq(Affine ? relu(t[q]) : t[q], mx));
        taken = hn::Or(taken, eq);
        m[q] = hn::IfThenElseZero(hn::And(pass, eq), grad);
      }
    } else {
      inputs();
      if constexpr (K == PoolKind::avg) {
        const VF share = hn::Mul(grad, hn::Set(d, 0.25f));
        for (int q = 0; q < 4; ++q) m[q] = Affine ? hn::IfThenElseZero(hn::Gt(t[q], zero), share) : share;
      } else {
        const VF yy = load(g, y + out + k);
        const VF ratio = hn::IfThenElseZero(hn::Gt(yy, zero), hn::Div(grad, yy));  // 0 where y == 0
        for (int q = 0; q < 4; ++q)
          m[q] = Affine ? hn::IfThenElseZero(hn::Gt(t[q], zero), hn::Mul(t[q], ratio)) : hn::Mul(t[q], ratio);
      }
    }
  }
};

// Output rows [lo, hi) of the n * h/2; the last input row of each image is in no window when h is
// odd, and each of those rows is a task of its own after them ([n * h/2, n * h/2 + n)).
template <PoolKind K>
void backward(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h, int64_t w, int64_t c,
              int64_t lo, int64_t hi) {
  const int64_t ho = h / 2, wo = w / 2, step = static_cast<int64_t>(lanes());
  const Router<K, false> route{x, nullptr, nullptr, y, dy, nullptr};
  for (int64_t r = lo; r < hi; ++r) {
    if (r >= n * ho) {  // the last row of image r - n * ho, in no window
      std::fill_n(dx + (((r - n * ho) * h + h - 1) * w) * c, w * c, 0.0f);
      continue;
    }
    const int64_t b = r / ho, i = r % ho;
    const int64_t top = ((b * h + 2 * i) * w) * c, bot = top + w * c;
    for (int64_t j = 0; j < wo; ++j)
      for (int64_t k = 0; k < c; k += step) {
        const Group g = group(c - k);
        const int64_t at[4] = {top + 2 * j * c, top + 2 * j * c + c, bot + 2 * j * c, bot + 2 * j * c + c};
        VF m[4];
        route(at, (r * wo + j) * c, k, g, m);
        for (int q = 0; q < 4; ++q) store(g, m[q], dx + at[q] + k);
      }
    if (w & 1) {  // the last column is in no window
      std::fill_n(dx + top + (w - 1) * c, c, 0.0f);
      std::fill_n(dx + bot + (w - 1) * c, c, 0.0f);
    }
  }
}

// The tail's backward, pass 1: one task per row of windows (n, i) sums m and m * (x - mean) per
// channel. The pool's full-size input gradient is never written.
template <PoolKind K>
void tail_sums(const TailBackward& tb, float* part, int64_t lo, int64_t hi) {
  const int64_t C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2, step = static_cast<int64_t>(lanes());
  const float *x = tb.x, *mean = tb.mean;
  const Router<K, true> route{tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
  for (int64_t t = lo; t < hi; ++t) {
    const int64_t b = t / ho, i = t % ho;
    const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
    for (int64_t k = 0; k < C; k += step) {
      const Group g = group(C - k);
      const VF mu = load(g, mean + k);
      VF as = hn::Zero(DF()), ad = hn::Zero(DF()), m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        route(at, out + j * C, k, g, m);
        for (int q = 0; q < 4; ++q) {
          as = hn::Add(as, m[q]);
          ad = hn::Add(ad, hn::Mul(m[q], hn::Sub(load(g, x + at[q] + k), mu)));
        }
      }
      store(g, as, part + t * 2 * C + k);
      store(g, ad, part + t * 2 * C + C + k);
    }
  }
}

// dx at one input from its m: k1 * ((m - k2) - (x - mean) * k3).
inline VF tail_input_gradient(VF m, VF x, VF s1, VF s2, VF s3, VF mu) {
  return hn::Mul(s1, hn::Sub(hn::Sub(m, s2), hn::Mul(hn::Sub(x, mu), s3)));
}

// Pass 2: dx at every input; inputs in no window have m = 0. Tasks [lo, hi) of the rows of
// windows, then (odd h) each image's last row.
template <PoolKind K>
void tail_dx(const TailBackward& tb, const float* k1, const float* k2, const float* k3, float* dx, int64_t lo,
             int64_t hi) {
  const int64_t C = tb.c, h = tb.h, w = tb.w, ho = h / 2, wo = w / 2, tasks = tb.tasks();
  const int64_t step = static_cast<int64_t>(lanes());
  const float *x = tb.x, *mean = tb.mean;
  const Router<K, true> route{tb.x, tb.scale, tb.shift, tb.y, tb.dy, tb.winner};
  for (int64_t t = lo; t < hi; ++t) {
    for (int64_t k = 0; k < C; k += step) {
      const Group g = group(C - k);
      const VF zero = hn::Zero(DF());
      const VF s1 = load(g, k1 + k), s2 = load(g, k2 + k), s3 = load(g, k3 + k), mu = load(g, mean + k);
      if (t >= tasks) {  // the last row of image t - tasks, in no window (odd h)
        const int64_t row = ((t - tasks) * h + h - 1) * w * C + k;
        for (int64_t j = 0; j < w; ++j)
          store(g, tail_input_gradient(zero, load(g, x + row + j * C), s1, s2, s3, mu), dx + row + j * C);
        continue;
      }
      const int64_t b = t / ho, i = t % ho;
      const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
      VF m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        route(at, out + j * C, k, g, m);
        for (int q = 0; q < 4; ++q)
          store(g, tail_input_gradient(m[q], load(g, x + at[q] + k), s1, s2, s3, mu), dx + at[q] + k);
      }
      if (w & 1)  // the last column, in no window
        for (int64_t row : {top, top + w * C}) {
          const int64_t at = row + (w - 1) * C + k;
          store(g, tail_input_gradient(zero, load(g, x + at), s1, s2, s3, mu), dx + at);
        }
    }
  }
}

template <bool Affine>
void forward_affine(PoolKind kind, const float* x, const float* scale, const float* shift, float* y, int64_t h,
                    int64_t w, int64_t c, uint8_t* winner, int64_t lo, int64_t hi) {
  switch (kind) {
    case PoolKind::avg: return forward<PoolKind::avg, Affine>(x, scale, shift, y, h, w, c, nullptr, lo, hi);
    case PoolKind::l2: return forward<PoolKind::l2, Affine>(x, scale, shift, y, h, w, c, nullptr, lo, hi);
    case PoolKind::max: break;
  }
  forward<PoolKind::max, Affine>(x, scale, shift, y, h, w, c, winner, lo, hi);
}

void forward_any(PoolKind kind, const float* x, const float* scale, const float* shift, float* y, int64_t h, int64_t w,
                 int64_t c, uint8_t* winner, int64_t lo, int64_t hi) {
  if (scale) return forward_affine<true>(kind, x, scale, shift, y, h, w, c, winner, lo, hi);
  forward_affine<false>(kind, x, scale, shift, y, h, w, c, winner, lo, hi);
}

void backward_any(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                  int64_t w, int64_t c, int64_t lo, int64_t hi) {
  switch (kind) {
    case PoolKind::avg: return backward<PoolKind::avg>(x, y, dy, dx, n, h, w, c, lo, hi);
    case PoolKind::l2: return backward<PoolKind::l2>(x, y, dy, dx, n, h, w, c, lo, hi);
    case PoolKind::max: break;
  }
  backward<PoolKind::max>(x, y, dy, dx, n, h, w, c, lo, hi);
}

void tail_sums_any(const TailBackward& tb, float* part, int64_t lo, int64_t hi) {
  switch (tb.kind) {
    case PoolKind::avg: return tail_sums<PoolKind::avg>(tb, part, lo, hi);
    case PoolKind::l2: return tail_sums<PoolKind::l2>(tb, part, lo, hi);
    case PoolKind::max: break;
  }
  tail_sums<PoolKind::max>(tb, part, lo, hi);
}

void tail_dx_any(const TailBackward& tb, const float* k1, const float* k2, const float* k3, float* dx, int64_t lo,
                 int64_t hi) {
  switch (tb.kind) {
    case PoolKind::avg: return tail_dx<PoolKind::avg>(tb, k1, k2, k3, dx, lo, hi);
    case PoolKind::l2: return tail_dx<PoolKind::l2>(tb, k1, k2, k3, dx, lo, hi);
    case PoolKind::max: break;
  }
  tail_dx<PoolKind::max>(tb, k1, k2, k3, dx, lo, hi);
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(forward_any);
HWY_EXPORT(backward_any);
HWY_EXPORT(tail_sums_any);
HWY_EXPORT(tail_dx_any);

// Each over its tasks (rows of windows; the backward's also each image's last row when h is odd),
// a range of them per thread.
void pool2x2_forward_nhwc(PoolKind kind, const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c,
                          uint8_t* winner) {
  in_parallel(n * (h / 2), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(forward_any)(kind, x, nullptr, nullptr, y, h, w, c, winner, lo, hi);
  });
}

void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c) {
  in_parallel(n * (h / 2) + (h & 1 ? n : 0), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(backward_any)(kind, x, y, dy, dx, n, h, w, c, lo, hi);
  });
}

void affine_relu_pool2x2_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y,
                              int64_t n, int64_t h, int64_t w, int64_t c, uint8_t* winner) {
  in_parallel(n * (h / 2), true, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(forward_any)(kind, x, scale, shift, y, h, w, c, winner, lo, hi);
  });
}

void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& tb, float* part) {
  in_parallel(tb.tasks(), true,
              [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(tail_sums_any)(tb, part, lo, hi); });
}

void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& tb, const float* k1, const float* k2, const float* k3,
                                          float* dx) {
  in_parallel(tb.tasks() + (tb.h & 1 ? tb.n : 0), true,
              [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(tail_dx_any)(tb, k1, k2, k3, dx, lo, hi); });
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
