#pragma once
#include <memory>
#include <vector>

#include "kernels/kernels.hpp"
#include "nn/layer.hpp"

namespace tailor {

// Linear: y (N, out) = x (N, in) weight^T (in, out) + bias (out); weight is (out, in) as in PyTorch.
class Linear final : public Layer {
 public:
  Linear(int64_t in, int64_t out);
  std::string type() const override { return "linear"; }
  nlohmann::json describe() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  std::vector<Param*> params() override { return {&weight_, &bias_}; }
  int64_t forward_flops(const Shape& in) const override { return 2 * in[0] * in_ * out_; }
  void set_bf16_training(bool on) override { bf16_ = on; }

 private:
  // oneDNN primitives, made once per batch size and precision seen.
  kernels::LinearKernel& kernel_for(int64_t n, bool bf16);

  int64_t in_, out_;
  bool bf16_ = false;
  Param weight_, bias_;
  ConstView x_;
  kernels::LinearKernel* current_ = nullptr;
  std::vector<std::unique_ptr<kernels::LinearKernel>> kernels_;
};

}  // namespace tailor
