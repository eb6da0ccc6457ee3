#include "nn/batchnorm.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/batchnorm.hpp"
#include "nn/reduce.hpp"
#include "util/error.hpp"

namespace tailor {

BatchNormRows::BatchNormRows(Param& weight, Param& bias, Param& running_mean, Param& running_var, int64_t channels,
                             float eps, float momentum)
    : weight_(weight), bias_(bias), running_mean_(running_mean), running_var_(running_var), c_(channels), eps_(eps),
      momentum_(momentum), inv_std_(channels), mean_(channels), scale_(channels), shift_(channels),
      coef_(3 * channels), sums_(2 * channels) {}

void BatchNormRows::statistics(ConstView x, Mode mode) {
  mode_ = mode;
  rows_ = x.numel() / c_;
  const int64_t rows = rows_, chunks = kernels::batchnorm_chunks(rows), C = c_;
  float* part = partials(chunks);
  if (mode == Mode::train) {
    double* mean = sums_.data();
    double* sq = mean + C;
    for (int pass = 0; pass < 2; ++pass) {
      kernels::batchnorm_rows_sums(x.data, rows, C, pass == 0 ? nullptr : mean_.data(), part);
      double* total = pass == 0 ? mean : sq;
      std::fill_n(total, C, 0.0);
      for (int64_t ch = 0; ch < chunks; ++ch)
        for (int64_t c = 0; c < C; ++c) total[c] += part[ch * C + c];
      if (pass == 0)
        for (int64_t c = 0; c < C; ++c) mean_[c] = static_cast<float>(mean[c] / rows);
    }
    for (int64_t c = 0; c < C; ++c) {
      const double var = sq[c] / rows;
      const float m = mean_[c];
      inv_std_[c] = static_cast<float>(1.0 / std::sqrt(var + eps_));
      const double unbiased = rows > 1 ? var * rows / (rows - 1) : var;
      running_mean_.value[c] = (1 - momentum_) * running_mean_.value[c] + momentum_ * m;
      running_var_.value[c] = (1 - momentum_) * running_var_.value[c] + momentum_ * static_cast<float>(unbiased);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean_[c] = running_mean_.value[c];
      inv_std_[c] = 1.0f / std::sqrt(running_var_.value[c] + eps_);
    }
  }
  for (int64_t c = 0; c < C; ++c) {  // as the planar path: y = x * a + (b - mean * a)
    scale_[c] = weight_.value[c] * inv_std_[c];
    shift_[c] = bias_.value[c] - mean_[c] * scale_[c];
  }
}

float* BatchNormRows::partials(int64_t parts) {
  if (part_.size() < static_cast<size_t>(parts * 2 * c_)) part_.resize(parts * 2 * c_);  // the first step only
  return part_.data();
}

// Pass 1's sums of m and m * (x - mean), (parts, 2, C), added in double in order; the parameter
// gradients; and pass 2's constants: scale, mean of m, inv_std * mean of m * xhat.
const float* BatchNormRows::finish(int64_t parts) {
  const int64_t C = c_, rows = rows_;
  const float* part = part_.data();
  double* db = sums_.data();
  double* dg = db + C;
  std::fill_n(db, 2 * C, 0.0);
  for (int64_t t = 0; t < parts; ++t)
    for (int64_t c = 0; c < C; ++c) {
      db[c] += part[t * 2 * C + c];
      dg[c] += part[t * 2 * C + C + c];
    }
  const bool eval = mode_ == Mode::eval;
  float* k1 = coef_.data();
  float* k2 = k1 + C;
  float* k3 = k2 + C;
  for (int64_t c = 0; c < C; ++c) {
    dg[c] *= inv_std_[c];  // sum dy * xhat
    weight_.grad[c] = static_cast<float>(dg[c]);
    bias_.grad[c] = static_cast<float>(db[c]);
    k1[c] = weight_.value[c] * inv_std_[c];
    k2[c] = eval ? 0.0f : static_cast<float>(db[c] / rows);
    k3[c] = eval ? 0.0f : inv_std_[c] * static_cast<float>(dg[c] / rows);
  }
  return coef_.data();
}

BatchNorm::BatchNorm(int64_t channels, bool spatial, bool relu, float eps, float momentum)
    : c_(channels), spatial_(spatial), relu_(relu && spatial), eps_(eps), momentum_(momentum),
      weight_{"weight", Shape{channels}, ParamRole::bn_scale},
      bias_{"bias", Shape{channels}, ParamRole::bn_shift},
      running_mean_{"running_mean", Shape{channels}, ParamRole::bn_shift},
      running_var_{"running_var", Shape{channels}, ParamRole::bn_scale},
      rows_(weight_, bias_, running_mean_, running_var_, channels, eps, momentum), inv_std_(channels),
      stat_mean_(channels) {}

nlohmann::json BatchNorm::describe() const {
  // eps as a double of the float's value, so a reader gets the float back exactly.
  if (relu_) return {{"type", "batchnorm2d"}, {"channels", c_}, {"relu", true}, {"eps", eps_}};
  if (spatial_) return {{"type", "batchnorm2d"}, {"channels", c_}, {"eps", eps_}};
  return {{"type", "batchnorm1d"}, {"features", c_}, {"eps", eps_}};
}

Shape BatchNorm::output_shape(const Shape& in) const {
  if (in.rank() != (spatial_ ? 4u : 2u) || in[1] != c_)
    throw Error(type() + " with " + std::to_string(c_) + " channels cannot take input " + in.str());
  return in;
}

// (N, C) inputs and channels-last (N, C, H, W) ones are (R, C) rows, channels innermost: the
// kernels of kernels/batchnorm.hpp run over rows and vectorise across the contiguous channels
// (the per-channel loops of the planar case would stride by C).
void BatchNorm::forward_rows(ConstView x, View y, Mode mode) {
  rows_.statistics(x, mode);
  kernels::batchnorm_rows_affine(x.data, rows_.scale(), rows_.shift(), y.data, x.numel() / c_, c_, relu_);
}

// Pass 1 the sums of m = dy (masked by the fused relu), pass 2
// dx = scale * (m - mean(m) - xhat * mean(m * xhat)); in evaluation mode scale * m.
void BatchNorm::backward_rows(ConstView dy, View dx) {
  const int64_t rows = shape_.numel() / c_, chunks = kernels::batchnorm_chunks(rows), C = c_;
  const float* relu_y = relu_ ? y_.data : nullptr;
  kernels::batchnorm_rows_backward_sums(dy.data, x_.data, relu_y, rows_.mean(), rows, C, rows_.partials(chunks));
  const float* k = rows_.finish(chunks);
  if (dx.empty()) return;
  kernels::batchnorm_rows_backward_dx(dy.data, x_.data, relu_y, rows_.mean(), k, k + C, k + 2 * C,
                                      rows_.mode() == Mode::eval, rows, C, dx.data);
}

void BatchNorm::forward(ConstView x, View y, Mode mode) {
  mode_ = mode;
  shape_ = x.shape;
  // x itself is kept for backward (the model owns it until the next forward) instead of a
  // normalised copy: one memory stream fewer each way.
  x_ = x;
  y_ = y;
  if (!spatial_ || channels_last_) return forward_rows(x, y, mode);
  const int64_t n = x.shape[0], s = x.shape.per_item() / c_;  // s: spatial size per channel
  const int64_t count = n * s;
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

void BatchNorm::backward(ConstView dy, View dx) {
  if (!spatial_ || channels_last_) return backward_rows(dy, dx);
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
