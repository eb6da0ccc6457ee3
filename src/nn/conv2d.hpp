#pragma once
#include <memory>
#include <vector>

#include "kernels/kernels.hpp"
#include "nn/layer.hpp"

namespace tailor {

// Conv2d: y (N, Cout, Ho, Wo) = conv(x (N, Cin, H, W), weight (Cout, Cin / groups, K, K)) + bias
// (Cout), zero padding `pad` on every side, Ho = (H + 2 pad - K) / stride + 1; in `groups` groups
// of channels (groups == Cin == Cout: depthwise), as PyTorch's nn.Conv2d.
class Conv2d final : public Layer {
 public:
  Conv2d(int64_t cin, int64_t cout, int64_t kernel, int64_t pad, int64_t stride = 1, int64_t groups = 1);
  std::string type() const override { return "conv2d"; }
  nlohmann::json describe() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  std::vector<Param*> params() override { return {&weight_, &bias_}; }
  int64_t forward_flops(const Shape& in) const override;
  bool prefers_channels_last() const override { return true; }
  bool supports_channels_last() const override { return true; }
  void set_channels_last(bool on) override { channels_last_ = on; }
  bool supports_planar_input() const override { return true; }
  void set_planar_input(bool on) override { planar_input_ = on; }
  void set_bf16_training(bool on) override { bf16_ = on; }

 private:
  // Primitives are made once per (batch, H, W) seen: the full batch, the last partial batch and
  // the evaluation batch, so steady-state steps create nothing.
  kernels::Conv2dKernel& kernel_for(const Shape& in, bool bf16);

  int64_t cin_, cout_, k_, pad_, stride_, groups_;
  bool channels_last_ = false, planar_input_ = false, bf16_ = false;
  Param weight_, bias_;
  ConstView x_;
  kernels::Conv2dKernel* current_ = nullptr;
  std::vector<std::unique_ptr<kernels::Conv2dKernel>> kernels_;
};

}  // namespace tailor
