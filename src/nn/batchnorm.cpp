#include "nn/batchnorm.hpp"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/pool.hpp"
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

// (N, C) input: channels are contiguous within a row, so the loops run over rows and vectorise
// across channels (the per-channel loops of the spatial case would stride by C).
// Channels innermost, (R, C) rows: R = N for (N, C) inputs, N*H*W for channels-last (N, C, H, W).
// The loops run over rows and vectorise across the contiguous channels, 16 at a time (AVX-512, masked for a last partial group; one register per
// group stays in place across a chunk's rows). Sums are taken per chunk of kChunk rows in float
// (the same chunks for any thread count, so results do not depend on it) and the chunks are
// added in double.
namespace {

constexpr int64_t kChunk = 64;

#if defined(__AVX512F__)
using Vec = __m512;
inline __mmask16 lanes(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u); }
inline Vec load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline void store(float* p, __mmask16 m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec zero() { return _mm512_setzero_ps(); }
// relu as std::max(v, 0) gives it: 0 where v < 0, else v.
inline Vec relu(Vec v) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_LT_OQ), v, zero()); }
// dy where y > 0, else 0.
inline Vec pass_where_positive(Vec dy, Vec y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, zero(), _CMP_GT_OQ), dy); }
constexpr int64_t kLanes = 16;
#else
struct Vec { float v; };
using __mmask16 = int;
inline __mmask16 lanes(int64_t) { return 1; }
inline Vec load(const float* p, __mmask16) { return {*p}; }
inline void store(float* p, __mmask16, Vec v) { *p = v.v; }
inline Vec add(Vec a, Vec b) { return {a.v + b.v}; }
inline Vec sub(Vec a, Vec b) { return {a.v - b.v}; }
inline Vec mul(Vec a, Vec b) { return {a.v * b.v}; }
inline Vec zero() { return {0.0f}; }
inline Vec relu(Vec a) { return {std::max(a.v, 0.0f)}; }
inline Vec pass_where_positive(Vec dy, Vec y) { return {y.v > 0.0f ? dy.v : 0.0f}; }
constexpr int64_t kLanes = 1;
#endif

}  // namespace

void BatchNorm::rows_statistics(ConstView x, Mode mode) {
  const int64_t rows = x.numel() / c_, chunks = (rows + kChunk - 1) / kChunk, C = c_;
  if (part_.size() < static_cast<size_t>(chunks * 2 * C)) part_.resize(chunks * 2 * C);
  scale_.resize(C);  // sized once: a step allocates nothing
  shift_.resize(C);
  sums_.resize(2 * C);
  coef_.resize(3 * C);
  float* part = part_.data();
  const float* in = x.data;
  if (mode == Mode::train) {
    // Two passes: the sums, then the squares about the mean (no cancellation).
    double* mean = sums_.data();
    double* sq = mean + C;
    for (int pass = 0; pass < 2; ++pass) {
      const float* centre = stat_mean_.data();  // pass 1 subtracts the mean found by pass 0
#pragma omp parallel for schedule(static) if (chunks > 1)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t end = std::min(rows, (ch + 1) * kChunk);
        for (int64_t k = 0; k < C; k += kLanes) {
          const __mmask16 m = lanes(C - k);
          const Vec mu = load(centre + k, m);
          Vec acc = zero();
          for (int64_t r = ch * kChunk; r < end; ++r) {
            const Vec v = load(in + r * C + k, m);
            if (pass == 0) {
              acc = add(acc, v);
            } else {
              const Vec d = sub(v, mu);
              acc = add(acc, mul(d, d));
            }
          }
          store(part + ch * C + k, m, acc);
        }
      }
      double* total = pass == 0 ? mean : sq;
      std::fill_n(total, C, 0.0);
      for (int64_t ch = 0; ch < chunks; ++ch)
        for (int64_t c = 0; c < C; ++c) total[c] += part[ch * C + c];
      if (pass == 0)
        for (int64_t c = 0; c < C; ++c) stat_mean_[c] = static_cast<float>(mean[c] / rows);
    }
    for (int64_t c = 0; c < C; ++c) {
      const double var = sq[c] / rows;
      const float m = stat_mean_[c];
      inv_std_[c] = static_cast<float>(1.0 / std::sqrt(var + eps_));
      const double unbiased = rows > 1 ? var * rows / (rows - 1) : var;
      running_mean_.value[c] = (1 - momentum_) * running_mean_.value[c] + momentum_ * m;
      running_var_.value[c] = (1 - momentum_) * running_var_.value[c] + momentum_ * static_cast<float>(unbiased);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      stat_mean_[c] = running_mean_.value[c];
      inv_std_[c] = eval_inv_std(c);
    }
  }
  for (int64_t c = 0; c < C; ++c) {  // as the planar path: y = x * a + (b - mean * a)
    scale_[c] = weight_.value[c] * inv_std_[c];
    shift_[c] = bias_.value[c] - stat_mean_[c] * scale_[c];
  }
}

void BatchNorm::forward_rows(ConstView x, View y, Mode mode) {
  rows_statistics(x, mode);
  const int64_t rows = x.numel() / c_, chunks = (rows + kChunk - 1) / kChunk, C = c_;
  const float* in = x.data;
  const float* a = scale_.data();
  const float* b = shift_.data();
  float* out = y.data;
  const bool with_relu = relu_;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t end = std::min(rows, (ch + 1) * kChunk);
    for (int64_t k = 0; k < C; k += kLanes) {
      const __mmask16 m = lanes(C - k);
      const Vec va = load(a + k, m), vb = load(b + k, m);
      for (int64_t r = ch * kChunk; r < end; ++r) {
        const Vec t = add(mul(load(in + r * C + k, m), va), vb);  // multiply, then add: as infer
        store(out + r * C + k, m, with_relu ? relu(t) : t);
      }
    }
  }
}

// The end of pass 1 of both backward paths: the parts' sums of m and m * (x - mean), (parts, 2, C)
// in part_, added in double in order; the parameter gradients; and the constants of pass 2 in
// coef_: scale, mean of m, inv_std * mean of m * xhat (the last two 0 in evaluation mode).
void BatchNorm::backward_sums(int64_t parts, int64_t rows) {
  const int64_t C = c_;
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
}

void BatchNorm::backward_rows(ConstView dy, View dx) {
  const int64_t rows = shape_.numel() / c_, chunks = (rows + kChunk - 1) / kChunk, C = c_;
  float* part = part_.data();
  const float* mean = stat_mean_.data();
  const bool with_relu = relu_;
  const float *g = dy.data, *in = x_.data, *out = y_.data;
  // Pass 1, per chunk: sum of m and of m * (x - mean), m = dy masked by the fused relu.
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t end = std::min(rows, (ch + 1) * kChunk);
    for (int64_t k = 0; k < C; k += kLanes) {
      const __mmask16 lm = lanes(C - k);
      const Vec mu = load(mean + k, lm);
      Vec as = zero(), ad = zero();
      for (int64_t r = ch * kChunk; r < end; ++r) {
        const int64_t o = r * C + k;
        Vec m = load(g + o, lm);
        if (with_relu) m = pass_where_positive(m, load(out + o, lm));
        as = add(as, m);
        ad = add(ad, mul(m, sub(load(in + o, lm), mu)));
      }
      store(part + ch * 2 * C + k, lm, as);
      store(part + ch * 2 * C + C + k, lm, ad);
    }
  }
  backward_sums(chunks, rows);
  if (dx.empty()) return;
  // Pass 2: dx = scale * (m - mean(m) - xhat * mean(m * xhat)); in evaluation mode scale * m.
  const bool eval = mode_ == Mode::eval;
  const float* k1 = coef_.data();
  const float* k2 = k1 + C;
  const float* k3 = k2 + C;
  float* d = dx.data;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t end = std::min(rows, (ch + 1) * kChunk);
    for (int64_t k = 0; k < C; k += kLanes) {
      const __mmask16 lm = lanes(C - k);
      const Vec s1 = load(k1 + k, lm), s2 = load(k2 + k, lm), s3 = load(k3 + k, lm);
      const Vec mu = load(mean + k, lm);
      for (int64_t r = ch * kChunk; r < end; ++r) {
        const int64_t o = r * C + k;
        Vec m = load(g + o, lm);
        if (with_relu) m = pass_where_positive(m, load(out + o, lm));
        store(d + o, lm, eval ? mul(m, s1) : mul(s1, sub(sub(m, s2), mul(sub(load(in + o, lm), mu), s3))));
      }
    }
  }
}

void BatchNorm::forward_through_pool2x2(ConstView x, View pool_y, uint8_t* winner, Mode mode) {
  mode_ = mode;
  shape_ = x.shape;
  x_ = x;
  y_ = {};  // not written: backward_through_pool2x2 does not need it
  rows_statistics(x, mode);
  kernels::affine_relu_maxpool2x2_nhwc(x.data, scale_.data(), shift_.data(), pool_y.data, x.shape[0], x.shape[2],
                                       x.shape[3], c_, winner);
}

bool BatchNorm::can_backward_through_pool() const {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  return spatial_ && channels_last_;
#else
  return false;
#endif
}

// One task per row of pooling windows (n, i). For each window and group of 16 channels the
// pool's gradient goes to the first of its four inputs equal to the pool's output (as
// MaxPool2d::backward), then through the fused relu (as backward_rows): m, at each of the four
// positions. Pass 1 sums m and m * (x - mean) per task; pass 2 writes dx from them. Inputs in no
// window (a last odd row or column) have m = 0.
void BatchNorm::backward_through_pool2x2(ConstView pool_dy, const float* pool_y, const uint8_t* winner, View dx) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  const int64_t n = shape_[0], C = c_, h = shape_[2], w = shape_[3], ho = h / 2, wo = w / 2;
  const int64_t tasks = n * ho, rows = n * h * w;
  if (part_.size() < static_cast<size_t>(tasks * 2 * C)) part_.resize(tasks * 2 * C);  // first step only
  float* part = part_.data();
  const float* mean = stat_mean_.data();
  const float *xin = x_.data, *g = pool_dy.data;
  const bool with_relu = relu_;
  const __m512 zero = _mm512_setzero_ps();
  // m at the four inputs of the window whose output is at `out`: the pool's gradient at the
  // window's winner (recorded by the pool's forward), kept there if the winner passed the relu
  // (its value, the pool's output, is > 0). The batch norm's output itself is not read.
  auto route = [&](int64_t out, int64_t k, __mmask16 lm, __m512 m[4]) {
    const __m512 gg = _mm512_maskz_loadu_ps(lm, g + out + k);
    const __m512i win = _mm512_maskz_cvtepu8_epi32(lm, _mm_maskz_loadu_epi8(lm, winner + out + k));
    __mmask16 pass = 0xFFFF;
    if (with_relu) pass = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lm, pool_y + out + k), zero, _CMP_GT_OQ);
    for (int q = 0; q < 4; ++q)
      m[q] = _mm512_maskz_mov_ps(pass & _mm512_cmpeq_epi32_mask(win, _mm512_set1_epi32(q)), gg);
  };
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / ho, i = t % ho;
    const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
    for (int64_t k = 0; k < C; k += 16) {
      const __mmask16 lm = lanes(C - k);
      const __m512 mu = _mm512_maskz_loadu_ps(lm, mean + k);
      __m512 as = zero, ad = zero, m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        route(out + j * C, k, lm, m);
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        for (int q = 0; q < 4; ++q) {
          as = _mm512_add_ps(as, m[q]);
          ad = _mm512_add_ps(ad, _mm512_mul_ps(m[q], _mm512_sub_ps(_mm512_maskz_loadu_ps(lm, xin + at[q] + k), mu)));
        }
      }
      _mm512_mask_storeu_ps(part + t * 2 * C + k, lm, as);
      _mm512_mask_storeu_ps(part + t * 2 * C + C + k, lm, ad);
    }
  }
  backward_sums(tasks, rows);
  if (dx.empty()) return;
  const float* k1 = coef_.data();  // as backward_rows
  const float* k2 = k1 + C;
  const float* k3 = k2 + C;
  float* d = dx.data;
  // dx at one input from its m.
  auto put = [&](int64_t at, int64_t k, __mmask16 lm, __m512 m, __m512 s1, __m512 s2, __m512 s3, __m512 mu) {
    const __m512 centred = _mm512_sub_ps(_mm512_maskz_loadu_ps(lm, xin + at + k), mu);
    _mm512_mask_storeu_ps(d + at + k, lm, _mm512_mul_ps(s1, _mm512_sub_ps(_mm512_sub_ps(m, s2), _mm512_mul_ps(centred, s3))));
  };
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks + (h & 1 ? n : 0); ++t) {
    for (int64_t k = 0; k < C; k += 16) {
      const __mmask16 lm = lanes(C - k);
      const __m512 s1 = _mm512_maskz_loadu_ps(lm, k1 + k), s2 = _mm512_maskz_loadu_ps(lm, k2 + k);
      const __m512 s3 = _mm512_maskz_loadu_ps(lm, k3 + k), mu = _mm512_maskz_loadu_ps(lm, mean + k);
      if (t >= tasks) {  // the last row of image t - tasks, in no window (odd h)
        const int64_t row = ((t - tasks) * h + h - 1) * w * C;
        for (int64_t j = 0; j < w; ++j) put(row + j * C, k, lm, zero, s1, s2, s3, mu);
        continue;
      }
      const int64_t b = t / ho, i = t % ho;
      const int64_t top = ((b * h + 2 * i) * w) * C, out = t * wo * C;
      __m512 m[4];
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t in = top + 2 * j * C;
        route(out + j * C, k, lm, m);
        const int64_t at[4] = {in, in + C, in + w * C, in + w * C + C};
        for (int q = 0; q < 4; ++q) put(at[q], k, lm, m[q], s1, s2, s3, mu);
      }
      if (w & 1)  // the last column, in no window
        for (int64_t r : {top, top + w * C}) put(r + (w - 1) * C, k, lm, zero, s1, s2, s3, mu);
    }
  }
#else
  (void)pool_dy, (void)pool_y, (void)winner, (void)dx;
  throw Error("batch norm: the fused pool backward needs AVX-512");
#endif
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

void BatchNorm::eval_affine(float* scale, float* shift) const {
  for (int64_t c = 0; c < c_; ++c) {
    // As in forward: a = g * inv, shift = b - mean * a.
    const float a = weight_.value[c] * eval_inv_std(c);
    scale[c] = a;
    shift[c] = bias_.value[c] - running_mean_.value[c] * a;
  }
}

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
