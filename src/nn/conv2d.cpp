#include "nn/conv2d.hpp"

#include "util/error.hpp"

namespace tailor {

Conv2d::Conv2d(int64_t cin, int64_t cout, int64_t kernel, int64_t pad, int64_t stride, int64_t groups)
    : cin_(cin), cout_(cout), k_(kernel), pad_(pad), stride_(stride), groups_(groups) {
  if (groups < 1 || cin % groups != 0 || cout % groups != 0 || stride < 1 || kernel < 1 || pad < 0)
    throw Error("conv2d " + std::to_string(cin) + "->" + std::to_string(cout) + ": " + std::to_string(groups) +
                " groups, stride " + std::to_string(stride) + " and kernel " + std::to_string(kernel) + " do not fit");
  const int64_t fan_in = cin / groups * kernel * kernel, fan_out = cout / groups * kernel * kernel;
  weight_ = {"weight", Shape{cout, cin / groups, kernel, kernel}, ParamRole::weight, fan_in, fan_out};
  bias_ = {"bias", Shape{cout}, ParamRole::bias, fan_in, fan_out};
}

nlohmann::json Conv2d::describe() const {
  // Stride and groups only when not 1, so the descriptions of stride-1 ungrouped convolutions
  // (checkpoints, the PyTorch reference files) stay as they were.
  nlohmann::json d{{"type", "conv2d"}, {"in", cin_}, {"out", cout_}, {"kernel", k_}, {"padding", pad_}};
  if (stride_ != 1) d["stride"] = stride_;
  if (groups_ != 1) d["groups"] = groups_;
  return d;
}

Shape Conv2d::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[1] != cin_)
    throw Error("conv2d layer expects (N, " + std::to_string(cin_) + ", H, W), got " + in.str());
  const int64_t ho = in[2] + 2 * pad_ - k_, wo = in[3] + 2 * pad_ - k_;
  if (ho < 0 || wo < 0) throw Error("conv2d kernel " + std::to_string(k_) + " is larger than its input " + in.str());
  return Shape{in[0], cout_, ho / stride_ + 1, wo / stride_ + 1};
}

int64_t Conv2d::forward_flops(const Shape& in) const {
  Shape out = output_shape(in);
  return 2 * out.numel() * (cin_ / groups_) * k_ * k_;
}

kernels::Conv2dKernel& Conv2d::kernel_for(const Shape& in, bool bf16) {
  for (auto& k : kernels_) {
    const auto& s = k->shape();
    if (s.n == in[0] && s.h == in[2] && s.w == in[3] && s.channels_last == channels_last_ &&
        s.planar_input == (channels_last_ && planar_input_) && s.bf16 == bf16 && s.threads == kernels::threads())
      // (stride, groups, kernel and padding are the layer's own: every kernel here shares them)
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
  s.stride = static_cast<int>(stride_);
  s.groups = static_cast<int>(groups_);
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
