#pragma once
// A residual block (He et al. 2016, "Deep Residual Learning"): y = act(body(x) + skip(x)).
#include <memory>
#include <vector>

#include "nn/activation.hpp"
#include "nn/chain.hpp"

namespace tailor {

// x (N, C, H, W) -> y (N, C', H', W'). The body is the block's layers (convolutions, each but the
// last followed by batch norm and its activation, the last by batch norm alone); the skip is the
// identity when the body keeps the shape, else a projection, a 1x1 convolution with the body's
// stride and its batch norm. The activation comes after the sum (relu: one pass with it).
// PyTorch's names: the body's parameters are "<block>.body.<part>.weight", the projection's
// "<block>.skip.<part>.weight", parts numbered as Sequential numbers layers (Layer::parts()).
class Residual final : public Layer {
 public:
  Residual(Chain body, Chain skip, ActivationKind activation);
  std::string type() const override { return "residual"; }
  nlohmann::json describe() const override;
  Shape output_shape(const Shape& in) const override;  // throws when body and skip cannot be added
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  std::vector<Param*> params() override;
  std::vector<Param*> buffers() override;
  int64_t forward_flops(const Shape& in) const override;
  bool prefers_channels_last() const override { return true; }
  bool supports_channels_last() const override;
  void set_channels_last(bool on) override;
  void set_bf16_training(bool on) override;
  const Chain& body() const { return body_; }
  const Chain& skip() const { return skip_; }

 private:
  Chain body_, skip_;
  ActivationKind act_;
  std::unique_ptr<Activation> other_;  // the activation when it is not relu
  Buffer sum_, dsum_, dskip_;           // the sum before another activation; the gradients
  ConstView x_, y_;
};

}  // namespace tailor
