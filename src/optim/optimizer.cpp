#include "optim/optimizer.hpp"

#include <cmath>

#include "util/error.hpp"

namespace tailor {

OptimKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimKind::sgd;
  if (name == "adam") return OptimKind::adam;
  if (name == "adamw") return OptimKind::adamw;
  if (name == "rmsprop") return OptimKind::rmsprop;
  throw Error("unknown --optimizer '" + name + "' (expected sgd, adam, adamw or rmsprop)");
}

std::string optimizer_name(OptimKind k) {
  switch (k) {
    case OptimKind::sgd: return "sgd";
    case OptimKind::adam: return "adam";
    case OptimKind::adamw: return "adamw";
    case OptimKind::rmsprop: return "rmsprop";
  }
  return "?";
}

Optimizer::Optimizer(const OptimConfig& cfg, size_t n) : cfg_(cfg), n_(n) {
  size_t slots = cfg.kind == OptimKind::sgd ? 1 : 2;
  state_.assign(slots * n, 0.0f);
}

void Optimizer::restore(const std::vector<float>& state, int64_t steps) {
  if (state.size() != state_.size() || steps < 0)
    throw Error("optimizer state of " + std::to_string(state.size()) + " values does not fit this optimizer (" +
                std::to_string(state_.size()) + ")");
  state_ = state;
  t_ = steps;
}

void Optimizer::step(float* params, const float* grads, float lr) {
  begin_step();
  update(params, grads, lr, 0, n_);
}

void Optimizer::update(float* __restrict p, const float* __restrict grad, float lr, size_t lo, size_t hi) {
  const float wd = cfg_.weight_decay;
  // The arrays never overlap; __restrict spares the loops below their run-time alias checks.
  // (They vectorise because the build has -fno-math-errno: an errno-setting sqrt kept the Adam
  // loop scalar, a quarter of an FCN epoch.)
  float* __restrict s0 = state_.data();
  float* __restrict s1 = state_.data() + (state_.size() > n_ ? n_ : 0);
  switch (cfg_.kind) {
    case OptimKind::sgd: {
      // buf = g on the first step, then momentum*buf + g; nesterov uses g + momentum*buf.
      const float mu = cfg_.momentum;
      for (size_t i = lo; i < hi; ++i) {
        float g = grad[i] + wd * p[i];
        if (mu != 0.0f) {
          s0[i] = t_ == 1 ? g : mu * s0[i] + g;
          g = cfg_.nesterov ? g + mu * s0[i] : s0[i];
        }
        p[i] -= lr * g;
      }
      break;
    }
    case OptimKind::adam:
    case OptimKind::adamw: {
      // Kingma & Ba 2015; AdamW (Loshchilov & Hutter 2019) decays the weights directly.
      const float b1 = cfg_.beta1, b2 = cfg_.beta2;
      const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t_));
      const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t_));
      const float step_size = static_cast<float>(lr / bc1);
      const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
      const bool decoupled = cfg_.kind == OptimKind::adamw;
      const float decay = decoupled ? 1.0f - lr * wd : 1.0f;
      const float l2 = decoupled ? 0.0f : wd;
      const float eps = cfg_.eps;
      // Element by element, so the split over threads changes nothing in the results.
#pragma omp parallel for schedule(static) if (hi - lo >= 32768)
      for (size_t i = lo; i < hi; ++i) {
        const float g = grad[i] + l2 * p[i];
        p[i] *= decay;
        s0[i] = b1 * s0[i] + (1.0f - b1) * g;
        s1[i] = b2 * s1[i] + (1.0f - b2) * g * g;
        p[i] -= step_size * s0[i] / (std::sqrt(s1[i]) * inv_sqrt_bc2 + eps);
      }
      break;
    }
    case OptimKind::rmsprop: {
      // Hinton's RMSProp as PyTorch writes it: eps outside the square root.
      const float a = cfg_.alpha, mu = cfg_.momentum;
      for (size_t i = lo; i < hi; ++i) {
        const float g = grad[i] + wd * p[i];
        s0[i] = a * s0[i] + (1.0f - a) * g * g;
        const float u = g / (std::sqrt(s0[i]) + cfg_.eps);
        if (mu != 0.0f) {
          s1[i] = mu * s1[i] + u;
          p[i] -= lr * s1[i];
        } else {
          p[i] -= lr * u;
        }
      }
      break;
    }
  }
}

}  // namespace tailor
