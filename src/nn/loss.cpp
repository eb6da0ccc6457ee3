#include "nn/loss.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "util/error.hpp"

namespace tailor {

LossStats softmax_cross_entropy(ConstView logits, const int32_t* labels, View dlogits,
                                float label_smoothing) {
  const int64_t n = logits.shape[0], k = logits.shape[1];
  const float inv_n = 1.0f / static_cast<float>(n);
  const float off = label_smoothing / static_cast<float>(k);
  LossStats st;
  constexpr int64_t kKeep = 64;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data + i * k;
    int64_t arg = 0;
    for (int64_t j = 1; j < k; ++j)
      if (z[j] > z[arg]) arg = j;
    const float zmax = z[arg];
    // exp(z - zmax) once per logit (kept for the gradient when the row is short enough).
    double e[kKeep];
    double sum = 0, zsum = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double v = std::exp(static_cast<double>(z[j] - zmax));
      if (j < kKeep) e[j] = v;
      sum += v;
      zsum += z[j];
    }
    const double lse = zmax + std::log(sum);
    const int32_t y = labels[i];
    double loss = lse - z[y];
    if (label_smoothing > 0.0f)
      loss = (1.0 - label_smoothing) * loss + label_smoothing * (lse - zsum / k);
    st.loss_sum += loss;
    st.correct += (arg == y);
    if (!dlogits.empty()) {
      float* g = dlogits.data + i * k;
      for (int64_t j = 0; j < k; ++j) {
        const float p = static_cast<float>(j < kKeep ? e[j] / sum : std::exp(z[j] - lse));
        const float target = (j == y ? 1.0f - label_smoothing : 0.0f) + off;
        g[j] = (p - target) * inv_n;
      }
    }
  }
  return st;
}

namespace {
// softmax(v / temperature) of one row of k values into p (double), max-shifted; returns
// log(sum of exp) of the shifted, scaled values, so that log p_j = v_j / T - max / T - that.
double tempered_softmax(const float* v, int64_t k, double temperature, double* p) {
  double vmax = v[0];
  for (int64_t j = 1; j < k; ++j) vmax = std::max(vmax, static_cast<double>(v[j]));
  double sum = 0;
  for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp((v[j] - vmax) / temperature);
  for (int64_t j = 0; j < k; ++j) p[j] /= sum;
  return std::log(sum) + vmax / temperature;
}
}  // namespace

LossStats distillation_loss(ConstView logits, const int32_t* labels, const float* teacher, View dlogits,
                            float label_smoothing, float weight, float temperature) {
  LossStats st = softmax_cross_entropy(logits, labels, dlogits, label_smoothing);
  const int64_t n = logits.shape[0], k = logits.shape[1];
  const double w = weight, t = temperature, inv_n = 1.0 / static_cast<double>(n);
  const float hard = 1.0f - weight;
  // A data set has at most 256 classes (stratified_split): the rows fit on the stack, and a
  // step allocates nothing.
  constexpr int64_t kMaxClasses = 256;
  if (k > kMaxClasses) throw Error("distillation over " + std::to_string(k) + " classes: at most 256");
  double ps[kMaxClasses], pt[kMaxClasses];
  double soft_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data + i * k;
    const float* y = teacher + i * k;
    const double lz = tempered_softmax(z, k, t, ps);
    const double ly = tempered_softmax(y, k, t, pt);
    // KL(pt || ps) = sum pt (log pt - log ps), the logs from the scaled logits and their lse's.
    double kl = 0;
    for (int64_t j = 0; j < k; ++j)
      if (pt[j] > 0) kl += pt[j] * ((y[j] / t - ly) - (z[j] / t - lz));
    soft_sum += t * t * kl;
    if (!dlogits.empty()) {
      float* g = dlogits.data + i * k;
      for (int64_t j = 0; j < k; ++j)
        g[j] = hard * g[j] + static_cast<float>(w * t * (ps[j] - pt[j]) * inv_n);
    }
  }
  st.loss_sum = (1.0 - w) * st.loss_sum + w * soft_sum;
  return st;
}

}  // namespace tailor
