// Planar 2x2 pools (kernels/pool.hpp), planes of (H, W), compiled for each instruction set of
// kernels/isa.hpp by Google Highway: a vector of outputs at a time from the de-interleaved pairs
// of two input rows, the row's last outputs (fewer than a vector) one at a time in the same
// operations. A CNN trains channels last (kernels/pool_nhwc.cpp); these serve models that do not.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/pool_planar.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>

#include "kernels/lanes-inl.h"
#include "kernels/parallel.hpp"
#include "kernels/pool.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

// The scalar and vector forms of one window's pool, in the reference's order of operations.
inline float combine(PoolKind kind, float a, float b, float c, float d) {
  if (kind == PoolKind::avg) return (((a + b) + c) + d) * 0.25f;
  if (kind == PoolKind::l2) return std::sqrt(((a * a + b * b) + c * c) + d * d);
  const float t = b > a ? b : a, u = d > c ? d : c;
  return u > t ? u : t;
}

inline VF combine(PoolKind kind, VF a, VF b, VF c, VF d) {
  if (kind == PoolKind::avg) return hn::Mul(hn::Add(hn::Add(hn::Add(a, b), c), d), hn::Set(DF(), 0.25f));
  if (kind == PoolKind::l2)
    return hn::Sqrt(hn::Add(hn::Add(hn::Add(hn::Mul(a, a), hn::Mul(b, b)), hn::Mul(c, c)), hn::Mul(d, d)));
  const VF t = hn::IfThenElse(hn::Gt(b, a), b, a), u = hn::IfThenElse(hn::Gt(d, c), d, c);
  return hn::IfThenElse(hn::Gt(u, t), u, t);
}

// Planes [lo, hi).
void forward(PoolKind kind, const float* x, float* y, int64_t h, int64_t w, int64_t lo, int64_t hi) {
  const DF d;
  const int64_t ho = h / 2, wo = w / 2, step = static_cast<int64_t>(lanes());
  for (int64_t p = lo; p < hi; ++p)
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      const float* r1 = r0 + w;
      float* out = y + (p * ho + i) * wo;
      int64_t j = 0;
      for (; j + step <= wo; j += step) {
        VF a, b, c, e;
        hn::LoadInterleaved2(d, r0 + 2 * j, a, b);
        hn::LoadInterleaved2(d, r1 + 2 * j, c, e);
        hn::StoreU(combine(kind, a, b, c, e), d, out + j);
      }
      for (; j < wo; ++j) out[j] = combine(kind, r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
    }
}

// The gradient at a window's four inputs: max to the first input equal to the output, avg dy/4,
// l2 dy * x / y (0 where y == 0).
inline void route(PoolKind kind, const float in[4], float y, float g, float m[4]) {
  if (kind == PoolKind::avg) {
    for (int q = 0; q < 4; ++q) m[q] = g * 0.25f;
  } else if (kind == PoolKind::l2) {
    const float r = y > 0.0f ? g / y : 0.0f;
    for (int q = 0; q < 4; ++q) m[q] = in[q] * r;
  } else {
    int win = 3;
    for (int q = 0; q < 3; ++q)
      if (in[q] == y) { win = q; break; }
    for (int q = 0; q < 4; ++q) m[q] = q == win ? g : 0.0f;
  }
}

inline void route(PoolKind kind, const VF in[4], VF y, VF g, VF m[4]) {
  const DF d;
  const VF zero = hn::Zero(d);
  if (kind == PoolKind::avg) {
    for (int q = 0; q < 4; ++q) m[q] = hn::Mul(g, hn::Set(d, 0.25f));
  } else if (kind == PoolKind::l2) {
    const VF r = hn::IfThenElseZero(hn::Gt(y, zero), hn::Div(g, y));
    for (int q = 0; q < 4; ++q) m[q] = hn::Mul(in[q], r);
  } else {
    MF taken = hn::FirstN(d, 0);
    for (int q = 0; q < 4; ++q) {
      const MF eq = q == 3 ? hn::Not(taken) : hn::AndNot(taken, hn::Eq(in[q], y));
      taken = hn::Or(taken, eq);
      m[q] = hn::IfThenElseZero(eq, g);
    }
  }
}

void backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t h, int64_t w,
              int64_t lo, int64_t hi) {
  const DF d;
  const int64_t ho = h / 2, wo = w / 2, step = static_cast<int64_t>(lanes());
  for (int64_t p = lo; p < hi; ++p) {
    float* base = dx + p * h * w;
    for (int64_t i = 0; i < ho; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      const float* r1 = r0 + w;
      float* d0 = base + 2 * i * w;
      float* d1 = d0 + w;
      const float* yrow = y + (p * ho + i) * wo;
      const float* grow = dy + (p * ho + i) * wo;
      int64_t j = 0;
      for (; j + step <= wo; j += step) {
        VF in[4], m[4];
        hn::LoadInterleaved2(d, r0 + 2 * j, in[0], in[1]);
        hn::LoadInterleaved2(d, r1 + 2 * j, in[2], in[3]);
        route(kind, in, hn::LoadU(d, yrow + j), hn::LoadU(d, grow + j), m);
        hn::StoreInterleaved2(m[0], m[1], d, d0 + 2 * j);
        hn::StoreInterleaved2(m[2], m[3], d, d1 + 2 * j);
      }
      for (; j < wo; ++j) {
        const float in[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
        float m[4];
        route(kind, in, yrow[j], grow[j], m);
        d0[2 * j] = m[0], d0[2 * j + 1] = m[1], d1[2 * j] = m[2], d1[2 * j + 1] = m[3];
      }
      if (w & 1) d0[w - 1] = d1[w - 1] = 0.0f;  // the last column is in no window
    }
    if (h & 1) std::fill_n(base + (h - 1) * w, w, 0.0f);  // nor the last row
  }
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(forward);
HWY_EXPORT(backward);

// A range of planes per thread.
void pool2x2_forward(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  in_parallel(planes, true, [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(forward)(kind, x, y, h, w, lo, hi); });
}

void pool2x2_backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t planes,
                      int64_t h, int64_t w) {
  in_parallel(planes, true,
              [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(backward)(kind, x, y, dy, dx, h, w, lo, hi); });
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
