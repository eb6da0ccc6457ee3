#pragma once
#include <vector>

#include "nn/layer.hpp"

namespace tailor {

// BatchNorm over channel dimension 1 of x (N, C) or (N, C, H, W) (Ioffe & Szegedy 2015):
//   y = weight * (x - mean) / sqrt(var + eps) + bias,
// batch statistics (biased variance) in training, running statistics in evaluation; the running
// variance is updated with the unbiased batch variance, momentum 0.1, as PyTorch does.
class BatchNorm final : public Layer {
 public:
  // relu: y = max(0, batch norm) in one pass (spatial inputs only): the separate activation
  // layer's read and write of the whole tensor, each way, are saved.
  BatchNorm(int64_t channels, bool spatial, bool relu = false, float eps = 1e-5f, float momentum = 0.1f);
  std::string type() const override {
    return std::string(spatial_ ? "batchnorm2d" : "batchnorm1d") + (relu_ ? "+relu" : "");
  }
  nlohmann::json describe() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  std::vector<Param*> params() override { return {&weight_, &bias_}; }
  std::vector<Param*> buffers() override { return {&running_mean_, &running_var_}; }

  bool spatial() const { return spatial_; }
  bool fused_relu() const { return relu_; }
  int64_t channels() const { return c_; }
  bool set_channels_last(bool on) override {
    channels_last_ = on && spatial_;
    return channels_last_ == on;
  }
  bool channels_last() const { return channels_last_; }
  // Evaluation mode as y = x * scale[c] + shift[c] (the running statistics folded in), computed
  // with exactly the float operations forward uses.
  void eval_affine(float* scale, float* shift) const;
  // Channels last with AVX-512: the backward of this layer and of the 2x2 max-pool after it, in
  // one go. pool_dy, pool_y and winner are the pool's output gradient, output (N, C, H/2, W/2)
  // and MaxPool2d::winners(); dx is this layer's input gradient (may be empty). The same
  // gradients as MaxPool2d::backward then backward (sums in another order), without the pool's
  // full-size input gradient in between, and without reading this layer's output again.
  bool can_backward_through_pool() const;
  // The forward of this layer (with its relu) and of the 2x2 max-pool after it, in one pass after
  // the statistics, for a layer that can_backward_through_pool(): pool_y and winner as
  // MaxPool2d's forward gives them, bit for bit; this layer's own output is not written (so only
  // backward_through_pool2x2 may follow, not backward).
  void forward_through_pool2x2(ConstView x, View pool_y, uint8_t* winner, Mode mode);
  void backward_through_pool2x2(ConstView pool_dy, const float* pool_y, const uint8_t* winner, View dx);

 private:
  // (R, C) rows, channels innermost: (N, C) inputs and channels-last (N, C, H, W) ones.
  // rows_statistics: the statistics (batch or running), scale_ and shift_.
  void rows_statistics(ConstView x, Mode mode);
  void forward_rows(ConstView x, View y, Mode mode);
  void backward_rows(ConstView dy, View dx);
  void backward_sums(int64_t parts, int64_t rows);
  float eval_inv_std(int64_t c) const;

  int64_t c_;
  bool spatial_, relu_, channels_last_ = false;
  float eps_, momentum_;
  Param weight_, bias_, running_mean_, running_var_;
  Mode mode_ = Mode::train;
  Shape shape_;
  ConstView x_, y_;             // input and output, kept for backward
  std::vector<float> inv_std_;  // (C)
  std::vector<float> stat_mean_;  // (C), the mean used by the last forward
  std::vector<float> part_;       // rows: per-chunk partial sums, (chunks, 2, C)
  std::vector<float> scale_, shift_;  // rows: (C), y = x * scale + shift
  std::vector<double> sums_;          // rows: (2, C) totals of the chunks
  std::vector<float> coef_;           // rows: (3, C) constants of backward
};

}  // namespace tailor
