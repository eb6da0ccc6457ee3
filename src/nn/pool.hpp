#pragma once
#include <string>
#include <vector>

#include "kernels/pool.hpp"
#include "nn/layer.hpp"

namespace tailor {

// "max", "avg" or "l2" (kernels::pool_name's names); throws tailor::Error naming the value.
kernels::PoolKind parse_pool(const std::string& name);
std::vector<std::string> pool_names();  // every name parse_pool takes

// Pool2d: y (N, C, H/k, W/k) = pool over each k x k window of x (N, C, H, W), stride k, floor
// mode, as PyTorch's MaxPool2d(k), AvgPool2d(k) and LPPool2d(2, k) (kernels/pool.hpp has the
// formulas). k = 2 runs the fast kernels, planar or channels last; other k the reference loops.
class Pool2d final : public Layer {
 public:
  Pool2d(kernels::PoolKind kind, int64_t kernel) : kind_(kind), k_(kernel) {}
  std::string type() const override;  // maxpool2d, avgpool2d, lppool2d
  nlohmann::json describe() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  kernels::PoolKind kind() const { return kind_; }
  int64_t kernel() const { return k_; }
  bool supports_channels_last() const override { return k_ == 2; }
  void set_channels_last(bool on) override { channels_last_ = on && k_ == 2; }

 private:
  kernels::PoolKind kind_;
  int64_t k_;
  bool channels_last_ = false;
  Shape in_shape_;
  ConstView x_, y_;  // backward finds the max's winners again, and reads y for l2
};

// Flatten: y (N, C*H*W) = x (N, C, H, W) in PyTorch's order (c, h, w), so the linear layer after
// it has PyTorch's weights. A channels-last input is transposed into that order.
class Flatten final : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override { return Shape{in[0], in.per_item()}; }
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  bool supports_channels_last() const override { return true; }
  void set_channels_last(bool on) override { channels_last_ = on; }

 private:
  bool channels_last_ = false;
  Shape in_shape_;
};

// GlobalAvgPool: y (N, C) = the mean of each channel's H x W plane of x (N, C, H, W)
// (kernels/gap.hpp), PyTorch's AdaptiveAvgPool2d(1) followed by a flatten: a CNN's head that
// holds no weights. Takes a channels-last input as it is.
class GlobalAvgPool final : public Layer {
 public:
  std::string type() const override { return "global_avg_pool"; }
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  int64_t forward_flops(const Shape& in) const override { return in.numel(); }
  bool supports_channels_last() const override { return true; }
  void set_channels_last(bool on) override { channels_last_ = on; }

 private:
  bool channels_last_ = false;
  Shape in_shape_;
};

}  // namespace tailor
