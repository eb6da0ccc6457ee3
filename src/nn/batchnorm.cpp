#include "nn/batchnorm.hpp"

#include <cmath>

#include "util/error.hpp"

namespace tailor {

BatchNorm::BatchNorm(int64_t channels, bool spatial, float eps, float momentum)
    : c_(channels), spatial_(spatial), eps_(eps), momentum_(momentum), inv_std_(channels) {
  weight_ = {"weight", Shape{channels}, ParamRole::bn_scale};
  bias_ = {"bias", Shape{channels}, ParamRole::bn_shift};
  running_mean_ = {"running_mean", Shape{channels}, ParamRole::bn_shift};
  running_var_ = {"running_var", Shape{channels}, ParamRole::bn_scale};
}

nlohmann::json BatchNorm::describe() const {
  if (spatial_) return {{"type", "batchnorm2d"}, {"channels", c_}};
  return {{"type", "batchnorm1d"}, {"features", c_}};
}

Shape BatchNorm::output_shape(const Shape& in) const {
  if (in.rank() != (spatial_ ? 4u : 2u) || in[1] != c_)
    throw Error(type() + " with " + std::to_string(c_) + " channels cannot take input " + in.str());
  return in;
}

void BatchNorm::forward(ConstView x, View y, Mode mode) {
  mode_ = mode;
  shape_ = x.shape;
  const int64_t n = x.shape[0], s = x.shape.per_item() / c_;  // s: spatial size per channel
  const int64_t count = n * s;
  if (xhat_.size() < static_cast<size_t>(x.numel())) xhat_.resize(x.numel());
  // Channels are independent: split them over threads (same arithmetic for any thread count).
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < c_; ++c) {
    float mean, inv;
    if (mode == Mode::train) {
      // Float sums within one (item, channel) row vectorise; rows are added in double.
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = x.data + (i * c_ + c) * s;
        float r = 0;
        for (int64_t j = 0; j < s; ++j) r += p[j];
        sum += r;
      }
      const double m = sum / count;
      const float mf = static_cast<float>(m);
      for (int64_t i = 0; i < n; ++i) {
        const float* p = x.data + (i * c_ + c) * s;
        float r = 0;
        for (int64_t j = 0; j < s; ++j) r += (p[j] - mf) * (p[j] - mf);
        sq += r;
      }
      const double var = sq / count;
      mean = static_cast<float>(m);
      inv = static_cast<float>(1.0 / std::sqrt(var + eps_));
      const double unbiased = count > 1 ? var * count / (count - 1) : var;
      running_mean_.value[c] = (1 - momentum_) * running_mean_.value[c] + momentum_ * mean;
      running_var_.value[c] =
          (1 - momentum_) * running_var_.value[c] + momentum_ * static_cast<float>(unbiased);
    } else {
      mean = running_mean_.value[c];
      inv = 1.0f / std::sqrt(running_var_.value[c] + eps_);
    }
    inv_std_[c] = inv;
    const float g = weight_.value[c], b = bias_.value[c];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c_ + c) * s;
      for (int64_t j = 0; j < s; ++j) {
        const float h = (x.data[off + j] - mean) * inv;
        xhat_[off + j] = h;
        y.data[off + j] = g * h + b;
      }
    }
  }
}

// Training mode, M = N*S values per channel:
//   dbias = sum dy, dweight = sum dy*xhat,
//   dx = weight * inv_std / M * (M*dy - dbias - xhat*dweight).
// Evaluation mode: the statistics are constants, dx = dy * weight * inv_std.
void BatchNorm::backward(ConstView dy, View dx) {
  const int64_t n = shape_[0], s = shape_.per_item() / c_;
  const double count = static_cast<double>(n * s);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < c_; ++c) {
    double db = 0, dg = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c_ + c) * s;
      float rb = 0, rg = 0;
      for (int64_t j = 0; j < s; ++j) {
        rb += dy.data[off + j];
        rg += dy.data[off + j] * xhat_[off + j];
      }
      db += rb;
      dg += rg;
    }
    weight_.grad[c] = static_cast<float>(dg);
    bias_.grad[c] = static_cast<float>(db);
    if (dx.empty()) continue;
    const float scale = weight_.value[c] * inv_std_[c];
    if (mode_ == Mode::eval) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c_ + c) * s;
        for (int64_t j = 0; j < s; ++j) dx.data[off + j] = dy.data[off + j] * scale;
      }
      continue;
    }
    const float mdb = static_cast<float>(db / count), mdg = static_cast<float>(dg / count);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c_ + c) * s;
      for (int64_t j = 0; j < s; ++j)
        dx.data[off + j] = scale * (dy.data[off + j] - mdb - xhat_[off + j] * mdg);
    }
  }
}

}  // namespace tailor
