#include "nn/loss.hpp"

#include <cmath>

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

}  // namespace tailor
