#pragma once
#include <vector>

#include "nn/layer.hpp"
#include "util/rng.hpp"

namespace tailor {

enum class ActivationKind { relu, sigmoid, tanh };
ActivationKind parse_activation(const std::string& name);  // throws tailor::Error
std::string activation_name(ActivationKind k);
std::vector<std::string> activation_names();  // every name parse_activation takes

// Element-wise y = f(x) for relu, sigmoid or tanh; backward uses y only:
// relu' = [y > 0], sigmoid' = y (1 - y), tanh' = 1 - y^2.
class Activation final : public Layer {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  std::string type() const override { return activation_name(kind_); }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  bool supports_channels_last() const override { return true; }  // element-wise: any order

 private:
  ActivationKind kind_;
  ConstView y_;
};

// Inverted dropout (Srivastava et al. 2014): in training y = x * keep / (1 - p) with keep drawn
// from the layer's own seeded stream; identity in evaluation.
class Dropout final : public Layer {
 public:
  Dropout(float p, uint64_t seed) : p_(p), rng_(seed) {}
  std::string type() const override { return "dropout"; }
  nlohmann::json describe() const override { return {{"type", "dropout"}, {"p", p_}}; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  // Tests only: the next training forward uses this keep mask (0/1 per element) instead of a draw.
  void set_next_mask(std::vector<uint8_t> keep) { fixed_ = std::move(keep); }
  bool supports_channels_last() const override { return true; }  // element-wise: any order
  std::vector<Rng*> random_streams() override { return {&rng_}; }

 private:
  float p_;
  Rng rng_;
  Mode mode_ = Mode::eval;
  std::vector<float> scale_;  // like x: 0 or 1/(1-p)
  std::vector<uint8_t> fixed_;
};

}  // namespace tailor
