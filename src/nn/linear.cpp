#include "nn/linear.hpp"

#include <algorithm>

#include "kernels/kernels.hpp"
#include "util/error.hpp"

namespace tailor {

Linear::Linear(int64_t in, int64_t out) : in_(in), out_(out) {
  weight_ = {"weight", Shape{out, in}, ParamRole::weight, in, out};
  bias_ = {"bias", Shape{out}, ParamRole::bias, in, out};
}

nlohmann::json Linear::describe() const { return {{"type", "linear"}, {"in", in_}, {"out", out_}}; }

Shape Linear::output_shape(const Shape& in) const {
  if (in.rank() != 2 || in[1] != in_)
    throw Error("linear layer expects (N, " + std::to_string(in_) + "), got " + in.str());
  return Shape{in[0], out_};
}

kernels::LinearKernel& Linear::kernel_for(int64_t n, bool bf16) {
  for (auto& k : kernels_)
    if (k->shape().n == n && k->shape().bf16 == bf16 && k->shape().threads == kernels::threads()) return *k;
  kernels::LinearShape s;
  s.n = static_cast<int>(n);
  s.in = static_cast<int>(in_);
  s.out = static_cast<int>(out_);
  s.bf16 = bf16;
  s.threads = kernels::threads();
  kernels_.push_back(std::make_unique<kernels::LinearKernel>(s));
  return *kernels_.back();
}

void Linear::forward(ConstView x, View y, Mode mode) {
  x_ = x;
  current_ = &kernel_for(x.shape[0], bf16_ && mode == Mode::train);
  current_->forward(x.data, weight_.value, bias_.value, y.data);  // y = x W^T + b
}

void Linear::backward(ConstView dy, View dx) {
  // dweight (out, in) = dy^T x, dbias = column sums of dy; then dx (N, in) = dy weight (the
  // bf16 kernel converts dy in the first call and reuses it in the second).
  current_->backward_weights(x_.data, dy.data, weight_.grad, bias_.grad);
  if (!dx.empty()) current_->backward_data(dy.data, weight_.value, dx.data);
}

}  // namespace tailor
