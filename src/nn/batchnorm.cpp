#include "nn/batchnorm.hpp"

#include <algorithm>
#include <cmath>

#include "nn/reduce.hpp"
#include "util/error.hpp"

namespace tailor {

BatchNorm::BatchNorm(int64_t channels, bool spatial, bool relu, float eps, float momentum)
    : c_(channels), spatial_(spatial), relu_(relu && spatial), eps_(eps), momentum_(momentum), inv_std_(channels), stat_mean_(channels) {
  weight_ = {"weight", Shape{channels}, ParamRole::bn_scale};
  bias_ = {"bias", Shape{channels}, ParamRole::bn_shift};
  running_mean_ = {"running_mean", Shape{channels}, ParamRole::bn_shift};
  running_var_ = {"running_var", Shape{channels}, ParamRole::bn_scale};
}

nlohmann::json BatchNorm::describe() const {
  if (relu_) return {{"type", "batchnorm2d"}, {"channels", c_}, {"relu", true}};
  if (spatial_) return {{"type", "batchnorm2d"}, {"channels", c_}};
  return {{"type", "batchnorm1d"}, {"features", c_}};
}

Shape BatchNorm::output_shape(const Shape& in) const {
  if (in.rank() != (spatial_ ? 4u : 2u) || in[1] != c_)
    throw Error(type() + " with " + std::to_string(c_) + " channels cannot take input " + in.str());
  return in;
}

// (N, C) input: channels are contiguous within a row, so the loops run over rows and vectorise
// across channels (the per-channel loops of the spatial case would stride by C).
void BatchNorm::forward_rows(ConstView x, View y, Mode mode) {
  const int64_t n = x.shape[0];
  float* mean = stat_mean_.data();
  float* inv = inv_std_.data();
  if (mode == Mode::train) {
    std::fill_n(mean, c_, 0.0f);
    std::fill_n(inv, c_, 0.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < c_; ++c) mean[c] += x.data[i * c_ + c];
    for (int64_t c = 0; c < c_; ++c) mean[c] /= static_cast<float>(n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < c_; ++c) {
        const float d = x.data[i * c_ + c] - mean[c];
        inv[c] += d * d;  // holds the sum of squares until the next loop
      }
    for (int64_t c = 0; c < c_; ++c) {
      const float var = inv[c] / static_cast<float>(n);
      const float unbiased = n > 1 ? inv[c] / static_cast<float>(n - 1) : var;
      running_mean_.value[c] = (1 - momentum_) * running_mean_.value[c] + momentum_ * mean[c];
      running_var_.value[c] = (1 - momentum_) * running_var_.value[c] + momentum_ * unbiased;
      inv[c] = 1.0f / std::sqrt(var + eps_);
    }
  } else {
    for (int64_t c = 0; c < c_; ++c) {
      mean[c] = running_mean_.value[c];
      inv[c] = eval_inv_std(c);
    }
  }
  const float* g = weight_.value;
  const float* b = bias_.value;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < c_; ++c) {
      const float h = (x.data[i * c_ + c] - mean[c]) * inv[c];
      xhat_[i * c_ + c] = h;
      y.data[i * c_ + c] = g[c] * h + b[c];
    }
}

void BatchNorm::backward_rows(ConstView dy, View dx) {
  const int64_t n = shape_[0];
  float* dg = weight_.grad;
  float* db = bias_.grad;
  std::fill_n(dg, c_, 0.0f);
  std::fill_n(db, c_, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < c_; ++c) {
      db[c] += dy.data[i * c_ + c];
      dg[c] += dy.data[i * c_ + c] * xhat_[i * c_ + c];
    }
  if (dx.empty()) return;
  const float* g = weight_.value;
  const float* inv = inv_std_.data();
  const float inv_n = 1.0f / static_cast<float>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < c_; ++c) {
      const float scale = g[c] * inv[c];
      dx.data[i * c_ + c] = mode_ == Mode::eval
                                ? dy.data[i * c_ + c] * scale
                                : scale * (dy.data[i * c_ + c] - db[c] * inv_n - xhat_[i * c_ + c] * dg[c] * inv_n);
    }
}

void BatchNorm::forward(ConstView x, View y, Mode mode) {
  mode_ = mode;
  shape_ = x.shape;
  const int64_t n = x.shape[0], s = x.shape.per_item() / c_;  // s: spatial size per channel
  const int64_t count = n * s;
  if (!spatial_) {
    if (xhat_.size() < static_cast<size_t>(x.numel())) xhat_.resize(x.numel());
    return forward_rows(x, y, mode);
  }
  // Spatial inputs are large: x itself is kept for backward (the model owns it until the next
  // forward) instead of writing a normalised copy, one memory stream fewer each way.
  x_ = x;
  y_ = y;
  // Channels are independent: split them over threads (same arithmetic for any thread count).
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < c_; ++c) {
    float mean, inv;
    if (mode == Mode::train) {
      // Float sums within one (item, channel) row vectorise; rows are added in double.
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i) sum += sum_shifted(x.data + (i * c_ + c) * s, s);
      const double m = sum / count;
      const float mf = static_cast<float>(m);
      for (int64_t i = 0; i < n; ++i) sq += sumsq_shifted(x.data + (i * c_ + c) * s, s, mf);
      const double var = sq / count;
      mean = static_cast<float>(m);
      inv = static_cast<float>(1.0 / std::sqrt(var + eps_));
      const double unbiased = count > 1 ? var * count / (count - 1) : var;
      running_mean_.value[c] = (1 - momentum_) * running_mean_.value[c] + momentum_ * mean;
      running_var_.value[c] =
          (1 - momentum_) * running_var_.value[c] + momentum_ * static_cast<float>(unbiased);
    } else {
      mean = running_mean_.value[c];
      inv = eval_inv_std(c);
    }
    inv_std_[c] = inv;
    stat_mean_[c] = mean;
    // y = g (x - mean) inv + b = x * a + (b - mean * a)
    const float a = weight_.value[c] * inv, shift = bias_.value[c] - mean * a;
    for (int64_t i = 0; i < n; ++i) {
      const float* __restrict in = x.data + (i * c_ + c) * s;
      float* __restrict out = y.data + (i * c_ + c) * s;
      if (relu_)
        for (int64_t j = 0; j < s; ++j) out[j] = std::max(in[j] * a + shift, 0.0f);
      else
        for (int64_t j = 0; j < s; ++j) out[j] = in[j] * a + shift;
    }
  }
}

// Training mode, M = N*S values per channel:
//   dbias = sum dy, dweight = sum dy*xhat,
//   dx = weight * inv_std / M * (M*dy - dbias - xhat*dweight).
// Evaluation mode: the statistics are constants, dx = dy * weight * inv_std.
float BatchNorm::eval_inv_std(int64_t c) const { return 1.0f / std::sqrt(running_var_.value[c] + eps_); }

void BatchNorm::eval_affine(float* scale, float* shift) const {
  for (int64_t c = 0; c < c_; ++c) {
    // As in forward: a = g * inv, shift = b - mean * a.
    const float a = weight_.value[c] * eval_inv_std(c);
    scale[c] = a;
    shift[c] = bias_.value[c] - running_mean_.value[c] * a;
  }
}

void BatchNorm::backward(ConstView dy, View dx) {
  if (!spatial_) return backward_rows(dy, dx);
  const int64_t n = shape_[0], s = shape_.per_item() / c_;
  const double count = static_cast<double>(n * s);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < c_; ++c) {
    double db = 0, dg = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c_ + c) * s;
      if (relu_) {
        float rs, rd;
        masked_sum_dot(dy.data + off, y_.data + off, x_.data + off, s, stat_mean_[c], &rs, &rd);
        db += rs;
        dg += rd;
      } else {
        db += sum_shifted(dy.data + off, s);
        dg += dot_shifted(dy.data + off, x_.data + off, s, stat_mean_[c]);
      }
    }
    dg *= inv_std_[c];  // sum dy * xhat, xhat = (x - mean) * inv
    weight_.grad[c] = static_cast<float>(dg);
    bias_.grad[c] = static_cast<float>(db);
    if (dx.empty()) continue;
    const float scale = weight_.value[c] * inv_std_[c];
    if (mode_ == Mode::eval) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c_ + c) * s;
        for (int64_t j = 0; j < s; ++j)
          dx.data[off + j] = (!relu_ || y_.data[off + j] > 0.0f) ? dy.data[off + j] * scale : 0.0f;
      }
      continue;
    }
    const float mdb = static_cast<float>(db / count), mdg = static_cast<float>(dg / count);
    const float mean = stat_mean_[c], inv = inv_std_[c];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c_ + c) * s;
      const float* __restrict g = dy.data + off;
      const float* __restrict in = x_.data + off;
      const float* __restrict out = y_.data + off;
      float* __restrict d = dx.data + off;
      if (relu_)
        for (int64_t j = 0; j < s; ++j)
          d[j] = scale * (g[j] * static_cast<float>(out[j] > 0.0f) - mdb - (in[j] - mean) * inv * mdg);
      else
        for (int64_t j = 0; j < s; ++j) d[j] = scale * (g[j] - mdb - (in[j] - mean) * inv * mdg);
    }
  }
}

}  // namespace tailor
