#pragma once
#include <vector>

#include "nn/layer.hpp"

namespace tailor {

// MaxPool2d: y (N, C, H/k, W/k) = max over each k x k window of x (N, C, H, W), stride k,
// floor mode. The first maximum in a window wins (as PyTorch); its index goes to backward.
class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(int64_t kernel) : k_(kernel) {}
  std::string type() const override { return "maxpool2d"; }
  nlohmann::json describe() const override { return {{"type", "maxpool2d"}, {"kernel", k_}}; }
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  int64_t kernel() const { return k_; }
  bool set_channels_last(bool on) override {
    channels_last_ = on && k_ == 2;
    return channels_last_ == on;
  }
  // Channels last: which input of its window each output of the last forward came from (0..3,
  // see kernels::maxpool2x2_forward_nhwc), for a batch norm's backward through this pool.
  const uint8_t* winners() const { return winner_.data(); }
  // The buffer for `outputs` winners, for a forward run by a batch norm through this pool.
  uint8_t* winners_for(int64_t outputs) {
    if (winner_.size() < static_cast<size_t>(outputs)) winner_.resize(outputs);  // grows once
    return winner_.data();
  }

 private:
  int64_t k_;
  bool channels_last_ = false;
  std::vector<uint8_t> winner_;
  Shape in_shape_;
  std::vector<int32_t> argmax_;  // (N, C, Ho, Wo): flat index into x (general k)
  ConstView x_, y_;              // k = 2: backward finds the winners again
};

// Flatten: y (N, C*H*W) = x (N, C, H, W) in PyTorch's order (c, h, w), so the linear layer after
// it has PyTorch's weights. A channels-last input is transposed into that order.
class Flatten final : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override { return Shape{in[0], in.per_item()}; }
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  bool set_channels_last(bool on) override {
    channels_last_ = on;
    return true;
  }

 private:
  bool channels_last_ = false;
  Shape in_shape_;
};

}  // namespace tailor
