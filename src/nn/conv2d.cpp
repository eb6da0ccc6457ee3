#include "nn/conv2d.hpp"

#include "util/error.hpp"

namespace tailor {

Conv2d::Conv2d(int64_t cin, int64_t cout, int64_t kernel, int64_t pad)
    : cin_(cin), cout_(cout), k_(kernel), pad_(pad) {
  weight_ = {"weight", Shape{cout, cin, kernel, kernel}, ParamRole::weight, cin * kernel * kernel,
             cout * kernel * kernel};
  bias_ = {"bias", Shape{cout}, ParamRole::bias, cin * kernel * kernel, cout * kernel * kernel};
}

nlohmann::json Conv2d::describe() const {
  return {{"type", "conv2d"}, {"in", cin_}, {"out", cout_}, {"kernel", k_}, {"padding", pad_}};
}

Shape Conv2d::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[1] != cin_)
    throw Error("conv2d layer expects (N, " + std::to_string(cin_) + ", H, W), got " + in.str());
  int64_t ho = in[2] + 2 * pad_ - k_ + 1, wo = in[3] + 2 * pad_ - k_ + 1;
  if (ho < 1 || wo < 1) throw Error("conv2d kernel " + std::to_string(k_) + " is larger than its input " + in.str());
  return Shape{in[0], cout_, ho, wo};
}

int64_t Conv2d::forward_flops(const Shape& in) const {
  Shape out = output_shape(in);
  return 2 * out.numel() * cin_ * k_ * k_;
}

kernels::Conv2dKernel& Conv2d::kernel_for(const Shape& in, bool bf16) {
  for (auto& k : kernels_) {
    const auto& s = k->shape();
    if (s.n == in[0] && s.h == in[2] && s.w == in[3] && s.channels_last == channels_last_ &&
        s.planar_input == (channels_last_ && planar_input_) && s.bf16 == bf16 && s.threads == kernels::threads())
      return *k;
  }
  kernels::Conv2dShape s;
  s.n = static_cast<int>(in[0]);
  s.cin = static_cast<int>(cin_);
  s.h = static_cast<int>(in[2]);
  s.w = static_cast<int>(in[3]);
  s.cout = static_cast<int>(cout_);
  s.k = static_cast<int>(k_);
  s.pad = static_cast<int>(pad_);
  s.channels_last = channels_last_;
  s.planar_input = channels_last_ && planar_input_;
  s.bf16 = bf16;
  s.threads = kernels::threads();
  kernels_.push_back(std::make_unique<kernels::Conv2dKernel>(s));
  return *kernels_.back();
}

void Conv2d::forward(ConstView x, View y, Mode mode) {
  x_ = x;
  current_ = &kernel_for(x.shape, bf16_ && mode == Mode::train);
  current_->forward(x.data, weight_.value, bias_.value, y.data);
}

void Conv2d::backward(ConstView dy, View dx) {
  current_->backward_weights(x_.data, dy.data, weight_.grad, bias_.grad);
  if (!dx.empty()) current_->backward_data(dy.data, weight_.value, dx.data);
}

}  // namespace tailor
