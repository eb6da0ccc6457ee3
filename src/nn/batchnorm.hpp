#pragma once
#include <vector>

#include "nn/layer.hpp"

namespace tailor {

// Batch norm's arithmetic over (R, C) rows with the C channels innermost — x (N, C), or a
// channels-last (N, C, H, W) — beside kernels/batchnorm.hpp's passes over the rows: the statistics
// (the batch's in training, the running ones in evaluation) and the affine they give,
// y = x * scale + shift; the running statistics' update; and the end of the backward's first pass.
// The BatchNorm layer drives it around its row kernels, a fused block tail (nn/block_tail.hpp)
// around its one-pass kernels.
class BatchNormRows {
 public:
  BatchNormRows(Param& weight, Param& bias, Param& running_mean, Param& running_var, int64_t channels, float eps,
                float momentum);
  // Two passes over x (the sums, then the squares about the mean: no cancellation), the chunks'
  // float sums added in double; updates the running statistics in training.
  void statistics(ConstView x, Mode mode);
  const float* scale() const { return scale_.data(); }  // (C)
  const float* shift() const { return shift_.data(); }
  const float* mean() const { return mean_.data(); }    // the mean the last statistics used
  Mode mode() const { return mode_; }
  // The backward's first pass fills partials(parts) with (parts, 2, C) sums of m and
  // m * (x - mean); finish(parts) adds them in order (in double), writes the parameter gradients
  // and returns the constants k1, k2, k3 (3, C) of the second pass,
  //   dx = k1 * ((m - k2) - (x - mean) * k3)   (k2 = k3 = 0 in evaluation mode).
  float* partials(int64_t parts);
  const float* finish(int64_t parts);

 private:
  Param &weight_, &bias_, &running_mean_, &running_var_;
  int64_t c_;
  float eps_, momentum_;
  Mode mode_ = Mode::train;
  int64_t rows_ = 0;
  std::vector<float> inv_std_, mean_, scale_, shift_, coef_;  // (C) each; coef (3, C)
  std::vector<float> part_;                                   // (chunks, 2, C) partial sums
  std::vector<double> sums_;                                  // (2, C)
};

// BatchNorm over channel dimension 1 of x (N, C) or (N, C, H, W) (Ioffe & Szegedy 2015):
//   y = weight * (x - mean) / sqrt(var + eps) + bias,
// batch statistics (biased variance) in training, running statistics in evaluation; the running
// variance is updated with the unbiased batch variance, momentum 0.1, as PyTorch does.
class BatchNorm final : public Layer {
 public:
  // relu: y = max(0, batch norm) in one pass (spatial inputs only): the separate activation
  // layer's read and write of the whole tensor, each way, are saved.
  BatchNorm(int64_t channels, bool spatial, bool relu = false, float eps = 1e-5f, float momentum = 0.1f);
  BatchNorm(const BatchNorm&) = delete;  // rows_ refers to this object's parameters
  BatchNorm& operator=(const BatchNorm&) = delete;
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
  bool supports_channels_last() const override { return spatial_; }
  void set_channels_last(bool on) override { channels_last_ = on && spatial_; }
  bool channels_last() const { return channels_last_; }
  // The arithmetic of the rows path (an (N, C) input, or channels last), for a fused block tail
  // that runs this batch norm inside its own kernels.
  BatchNormRows& rows() { return rows_; }

 private:
  void forward_rows(ConstView x, View y, Mode mode);
  void backward_rows(ConstView dy, View dx);
  float eval_inv_std(int64_t c) const;

  int64_t c_;
  bool spatial_, relu_, channels_last_ = false;
  float eps_, momentum_;
  Param weight_, bias_, running_mean_, running_var_;
  BatchNormRows rows_;
  Mode mode_ = Mode::train;
  Shape shape_;
  ConstView x_, y_;                 // input and output, kept for backward
  std::vector<float> inv_std_;      // planar: (C)
  std::vector<float> stat_mean_;    // planar: (C), the mean used by the last forward
};

}  // namespace tailor
