#include "nn/pool.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

#include "kernels/pool.hpp"
#include "util/error.hpp"

namespace tailor {

Shape MaxPool2d::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[2] < k_ || in[3] < k_)
    throw Error("maxpool2d with kernel " + std::to_string(k_) + " cannot take input " + in.str());
  return Shape{in[0], in[1], in[2] / k_, in[3] / k_};
}

void MaxPool2d::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  x_ = x;
  y_ = y;
  if (channels_last_) {
    kernels::maxpool2x2_forward_nhwc(x.data, y.data, x.shape[0], x.shape[2], x.shape[3], x.shape[1],
                                     winners_for(y.numel()));
    return;
  }
  if (k_ == 2) {
    kernels::maxpool2x2_forward(x.data, y.data, x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
    return;
  }
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t ho = h / k_, wo = w / k_;
  if (argmax_.size() < static_cast<size_t>(planes * ho * wo)) argmax_.resize(planes * ho * wo);
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x.data + p * h * w;
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        int64_t best = (i * k_) * w + j * k_;
        float m = xp[best];
        for (int64_t u = 0; u < k_; ++u)
          for (int64_t v = 0; v < k_; ++v) {
            int64_t idx = (i * k_ + u) * w + j * k_ + v;
            if (xp[idx] > m) { m = xp[idx]; best = idx; }
          }
        const int64_t o = (p * ho + i) * wo + j;
        y.data[o] = m;
        argmax_[o] = static_cast<int32_t>(p * h * w + best);
      }
  }
}

void MaxPool2d::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  if (channels_last_) {
    kernels::maxpool2x2_backward_nhwc(x_.data, y_.data, dy.data, dx.data, in_shape_[0], in_shape_[2], in_shape_[3],
                                      in_shape_[1]);
    return;
  }
  if (k_ == 2) {
    kernels::maxpool2x2_backward(x_.data, y_.data, dy.data, dx.data, in_shape_[0] * in_shape_[1], in_shape_[2],
                                 in_shape_[3]);
    return;
  }
  std::fill_n(dx.data, dx.numel(), 0.0f);
  const int64_t n = dy.numel();
  for (int64_t o = 0; o < n; ++o) dx.data[argmax_[o]] += dy.data[o];
}

void Flatten::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  if (channels_last_ && x.shape.rank() == 4)
    kernels::nhwc_to_nchw(x.data, y.data, x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
  else
    std::copy_n(x.data, x.numel(), y.data);
}

void Flatten::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  if (channels_last_ && in_shape_.rank() == 4)
    kernels::nchw_to_nhwc(dy.data, dx.data, in_shape_[0], in_shape_[1], in_shape_[2], in_shape_[3]);
  else
    std::copy_n(dy.data, dy.numel(), dx.data);
}

}  // namespace tailor
