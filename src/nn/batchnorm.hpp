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

  // For a block tail that runs this batch norm fused with its relu and pool (channels last, so
  // x is (R, C) rows): statistics() finds the batch (training) or running (evaluation) statistics
  // of x and the affine y = x * scale + shift, as forward does, without writing y; backward is
  // then the caller's: it fills partials(parts) with the (parts, 2, C) sums of m and
  // m * (x - mean), and finish_backward_sums writes the parameter gradients and returns the
  // constants k1, k2, k3 (3, C) of kernels::affine_relu_pool2x2_backward_dx_nhwc.
  void statistics(ConstView x, Mode mode);
  const float* scale() const { return scale_.data(); }
  const float* shift() const { return shift_.data(); }
  const float* mean() const { return stat_mean_.data(); }
  float* partials(int64_t parts);
  const float* finish_backward_sums(int64_t parts);

 private:
  // (R, C) rows, channels innermost: (N, C) inputs and channels-last (N, C, H, W) ones, through
  // kernels/batchnorm.hpp. rows_statistics: the statistics (batch or running), scale_ and shift_.
  void rows_statistics(ConstView x, Mode mode);
  void forward_rows(ConstView x, View y, Mode mode);
  void backward_rows(ConstView dy, View dx);
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
