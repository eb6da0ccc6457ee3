// The optimizers' rules (kernels/update.hpp), compiled for each instruction set of kernels/isa.hpp
// by Google Highway. Plain element-wise loops: the compiler vectorises them for each target (sqrt
// without errno, -fno-math-errno, so the Adam loop vectorises), and every lane does the
// reference's operations in its order (no contraction into fused multiply-adds: -ffp-contract=off).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/update.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>

#include "kernels/parallel.hpp"
#include "kernels/update.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

void sgd(const SgdRule& r, float* __restrict p, const float* __restrict grad, float* __restrict buf, size_t lo,
         size_t hi) {
  const float wd = r.weight_decay, mu = r.momentum, lr = r.lr;
  if (mu == 0.0f) {
    for (size_t i = lo; i < hi; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
    return;
  }
  for (size_t i = lo; i < hi; ++i) {
    float g = grad[i] + wd * p[i];
    buf[i] = r.first_step ? g : mu * buf[i] + g;
    g = r.nesterov ? g + mu * buf[i] : buf[i];
    p[i] -= lr * g;
  }
}

void adam(const AdamRule& r, float* __restrict p, const float* __restrict grad, float* __restrict m,
          float* __restrict v, size_t lo, size_t hi) {
  const float b1 = r.b1, b2 = r.b2, step = r.step_size, ib = r.inv_sqrt_bc2, eps = r.eps, decay = r.decay, l2 = r.l2;
  for (size_t i = lo; i < hi; ++i) {
    const float g = grad[i] + l2 * p[i];
    p[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    p[i] -= step * m[i] / (std::sqrt(v[i]) * ib + eps);
  }
}

void rmsprop(const RmspropRule& r, float* __restrict p, const float* __restrict grad, float* __restrict sq,
             float* __restrict buf, size_t lo, size_t hi) {
  const float a = r.alpha, mu = r.momentum, lr = r.lr, eps = r.eps, wd = r.weight_decay;
  for (size_t i = lo; i < hi; ++i) {
    const float g = grad[i] + wd * p[i];
    sq[i] = a * sq[i] + (1.0f - a) * g * g;
    const float u = g / (std::sqrt(sq[i]) + eps);
    if (mu != 0.0f) {
      buf[i] = mu * buf[i] + u;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * u;
    }
  }
}

void ema(float decay, const float* __restrict p, float* __restrict avg, size_t lo, size_t hi) {
  const float rest = 1.0f - decay;
  for (size_t i = lo; i < hi; ++i) avg[i] = decay * avg[i] + rest * p[i];
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(sgd);
HWY_EXPORT(adam);
HWY_EXPORT(rmsprop);
HWY_EXPORT(ema);

void sgd_update(const SgdRule& r, float* p, const float* grad, float* buf, size_t lo, size_t hi) {
  HWY_DYNAMIC_DISPATCH(sgd)(r, p, grad, buf, lo, hi);
}

// Over both threads from 32,768 weights (element by element: the split changes no result).
void adam_update(const AdamRule& r, float* p, const float* grad, float* m, float* v, size_t lo, size_t hi) {
  const auto n = static_cast<int64_t>(hi - lo);
  in_parallel(n, n >= 32768, [&](int64_t a, int64_t b) {
    HWY_DYNAMIC_DISPATCH(adam)(r, p, grad, m, v, lo + static_cast<size_t>(a), lo + static_cast<size_t>(b));
  });
}

void rmsprop_update(const RmspropRule& r, float* p, const float* grad, float* sq, float* buf, size_t lo, size_t hi) {
  HWY_DYNAMIC_DISPATCH(rmsprop)(r, p, grad, sq, buf, lo, hi);
}

void ema_update(float decay, const float* p, float* ema, size_t lo, size_t hi) {
  HWY_DYNAMIC_DISPATCH(ema)(decay, p, ema, lo, hi);
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
