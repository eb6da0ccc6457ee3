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

void Linear::forward(ConstView x, View y, Mode) {
  x_ = x;
  const int n = static_cast<int>(x.shape[0]);
  // Start every row at the bias, then accumulate x W^T on top (beta = 1).
  for (int i = 0; i < n; ++i) std::copy_n(bias_.value, out_, y.data + i * out_);
  kernels::gemm(false, true, n, out_, in_, 1.0f, x.data, in_, weight_.value, in_, 1.0f, y.data, out_);
}

void Linear::backward(ConstView dy, View dx) {
  const int n = static_cast<int>(dy.shape[0]);
  // dweight (out, in) = dy^T (out, N) x (N, in)
  kernels::gemm(true, false, out_, in_, n, 1.0f, dy.data, out_, x_.data, in_, 0.0f, weight_.grad, in_);
  // dbias (out) = column sums of dy
  std::fill_n(bias_.grad, out_, 0.0f);
  for (int i = 0; i < n; ++i)
    for (int64_t o = 0; o < out_; ++o) bias_.grad[o] += dy.data[i * out_ + o];
  // dx (N, in) = dy (N, out) weight (out, in)
  if (!dx.empty())
    kernels::gemm(false, false, n, in_, out_, 1.0f, dy.data, out_, weight_.value, in_, 0.0f, dx.data, in_);
}

}  // namespace tailor
