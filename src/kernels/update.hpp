#pragma once
// The optimizers' update rules (PyTorch 1.13's), over a range [lo, hi) of the flat weight arena
// (optim/optimizer.hpp computes each step's constants and calls these). Element by element, so
// any split of the arena into ranges gives the same bits; one body per instruction set
// (kernels/update.cpp), each the same operations in the same order as kernels::ref's.
#include <cstddef>

namespace tailor::kernels {

// g = grad + weight_decay * p; with momentum, buf = g on the first step, else momentum * buf + g,
// and g = nesterov ? g + momentum * buf : buf; then p -= lr * g.
struct SgdRule {
  float lr, weight_decay, momentum;
  bool nesterov, first_step;
};
void sgd_update(const SgdRule& r, float* p, const float* grad, float* buf, size_t lo, size_t hi);

// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019):
//   g = grad + l2 * p; p *= decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g;
//   p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
// (Adam: l2 = weight_decay, decay = 1; AdamW: l2 = 0, decay = 1 - lr * weight_decay).
struct AdamRule {
  float b1, b2, step_size, inv_sqrt_bc2, eps, decay, l2;
};
void adam_update(const AdamRule& r, float* p, const float* grad, float* m, float* v, size_t lo, size_t hi);

// RMSProp as PyTorch writes it, eps outside the square root:
//   g = grad + weight_decay * p; sq = alpha sq + (1 - alpha) g g; u = g / (sqrt(sq) + eps);
//   with momentum buf = momentum * buf + u, p -= lr * buf; else p -= lr * u.
struct RmspropRule {
  float lr, alpha, eps, momentum, weight_decay;
};
void rmsprop_update(const RmspropRule& r, float* p, const float* grad, float* sq, float* buf, size_t lo, size_t hi);

// An exponential moving average of the weights (--ema): ema = decay * ema + (1 - decay) * p.
void ema_update(float decay, const float* p, float* ema, size_t lo, size_t hi);

}  // namespace tailor::kernels
