#pragma once
// Optimizers over the model's flat parameter arena: PyTorch 1.13's update rules, one kernel each
// (kernels/update.hpp); this class keeps the state and the step count and computes each step's constants.
#include <cstdint>
#include <string>
#include <vector>

namespace tailor {

enum class OptimKind { sgd, adam, adamw, rmsprop };
OptimKind parse_optimizer(const std::string& name);  // throws tailor::Error
std::string optimizer_name(OptimKind k);
std::vector<std::string> optimizer_names();  // every name parse_optimizer takes

struct OptimConfig {
  OptimKind kind = OptimKind::adam;
  float lr = 1e-3f;
  float momentum = 0.0f;   // sgd, rmsprop
  bool nesterov = false;   // sgd
  float weight_decay = 0;  // L2 added to the gradient; decoupled for adamw
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam, adamw (eps also rmsprop)
  float alpha = 0.99f;     // rmsprop smoothing
};

class Optimizer {
 public:
  Optimizer(const OptimConfig& cfg, size_t n);
  // One update of params (n) from grads (n) at learning rate lr (the schedule's value).
  void step(float* params, const float* grads, float lr);
  // The same in parts, for threads that share one update: begin_step() once, then update() of
  // disjoint ranges [lo, hi) that together cover all n (every rule is element by element, so
  // the parts give step()'s result bit for bit).
  void begin_step() { ++t_; }
  void update(float* params, const float* grads, float lr, size_t lo, size_t hi);
  int64_t steps() const { return t_; }
  // State for checkpoints: [m..., v...] as the optimizer needs; the step count separately.
  const std::vector<float>& state() const { return state_; }
  const OptimConfig& config() const { return cfg_; }
  // Continues from a saved state() and steps(); throws tailor::Error if the size does not match.
  void restore(const std::vector<float>& state, int64_t steps);

 private:
  OptimConfig cfg_;
  size_t n_;
  int64_t t_ = 0;
  std::vector<float> state_;  // sgd: momentum buffer; adam: m, v; rmsprop: square avg, momentum
};

}  // namespace tailor
