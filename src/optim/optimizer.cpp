#include "optim/optimizer.hpp"

#include <cmath>

#include "kernels/update.hpp"
#include "util/error.hpp"
#include "util/names.hpp"

namespace tailor {

namespace {
constexpr NameTable<OptimKind> kOptimizerNames[] = {
    {"sgd", OptimKind::sgd}, {"adam", OptimKind::adam}, {"adamw", OptimKind::adamw}, {"rmsprop", OptimKind::rmsprop}};
}  // namespace

OptimKind parse_optimizer(const std::string& name) { return parse_name(kOptimizerNames, name, "--optimizer"); }
std::string optimizer_name(OptimKind k) { return name_of(kOptimizerNames, k); }
std::vector<std::string> optimizer_names() { return names_of(kOptimizerNames); }

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

void Optimizer::update(float* p, const float* grad, float lr, size_t lo, size_t hi) {
  const float wd = cfg_.weight_decay;
  float* s0 = state_.data();
  float* s1 = state_.data() + (state_.size() > n_ ? n_ : 0);
  switch (cfg_.kind) {
    case OptimKind::sgd:
      kernels::sgd_update({lr, wd, cfg_.momentum, cfg_.nesterov, t_ == 1}, p, grad, s0, lo, hi);
      break;
    case OptimKind::adam:
    case OptimKind::adamw: {
      // Kingma & Ba 2015; AdamW (Loshchilov & Hutter 2019) decays the weights directly.
      const float b1 = cfg_.beta1, b2 = cfg_.beta2;
      const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t_));
      const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t_));
      const bool decoupled = cfg_.kind == OptimKind::adamw;
      kernels::adam_update({b1, b2, static_cast<float>(lr / bc1), static_cast<float>(1.0 / std::sqrt(bc2)), cfg_.eps,
                            decoupled ? 1.0f - lr * wd : 1.0f, decoupled ? 0.0f : wd},
                           p, grad, s0, s1, lo, hi);
      break;
    }
    case OptimKind::rmsprop:
      // Hinton's RMSProp as PyTorch writes it: eps outside the square root.
      kernels::rmsprop_update({lr, cfg_.alpha, cfg_.eps, cfg_.momentum, wd}, p, grad, s0, s1, lo, hi);
      break;
  }
}

}  // namespace tailor
