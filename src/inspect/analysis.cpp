#include "inspect/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "train/evaluate.hpp"
#include "util/error.hpp"

namespace tailor {

std::vector<float> softmax(const float* z, int64_t k) {
  std::vector<float> p(static_cast<size_t>(k));
  const float zmax = *std::max_element(z, z + k);
  double sum = 0;
  for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(z[j] - zmax);
  for (float& v : p) v = static_cast<float>(v / sum);
  return p;
}

Predictions predict_dataset(Sequential& model, const Dataset& data, Normalization norm, int64_t batch, bool tta_flip) {
  Predictions p;
  std::vector<float> logits;
  evaluate(model, data, nullptr, norm, batch, &logits, tta_flip);
  p.n = static_cast<int64_t>(data.size());
  p.classes = p.n ? static_cast<int64_t>(logits.size()) / p.n : 0;
  p.probs.resize(logits.size());
  p.pred.resize(static_cast<size_t>(p.n));
  p.truth.assign(data.labels.begin(), data.labels.end());
  for (int64_t i = 0; i < p.n; ++i) {
    const float* z = logits.data() + i * p.classes;
    // The arg-max of the logits, first on a tie, is what the loss function counts as correct.
    p.pred[i] = static_cast<int32_t>(std::max_element(z, z + p.classes) - z);
    std::vector<float> row = softmax(z, p.classes);
    std::copy(row.begin(), row.end(), p.probs.begin() + i * p.classes);
  }
  return p;
}

std::vector<int64_t> confusion_counts(const Predictions& p) {
  std::vector<int64_t> c(static_cast<size_t>(p.classes * p.classes), 0);
  for (int64_t i = 0; i < p.n; ++i) {
    if (p.truth[i] < 0 || p.truth[i] >= p.classes)
      throw Error("label " + std::to_string(p.truth[i]) + " of image " + std::to_string(i) +
                  " is outside the model's " + std::to_string(p.classes) + " classes");
    ++c[static_cast<size_t>(p.truth[i] * p.classes + p.pred[i])];
  }
  return c;
}

std::vector<ClassStats> class_stats(const std::vector<int64_t>& counts, int64_t k) {
  std::vector<ClassStats> s(static_cast<size_t>(k));
  for (int64_t t = 0; t < k; ++t)
    for (int64_t p = 0; p < k; ++p) {
      const int64_t c = counts[static_cast<size_t>(t * k + p)];
      s[t].support += c;
      s[p].predicted += c;
      if (t == p) s[t].correct = c;
    }
  for (ClassStats& c : s) {
    c.precision = c.predicted ? 100.0 * c.correct / c.predicted : 0.0;
    c.recall = c.support ? 100.0 * c.correct / c.support : 0.0;
    c.f1 = c.precision + c.recall > 0 ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0.0;
  }
  return s;
}

std::vector<int64_t> confident_mistakes(const Predictions& p, int64_t limit) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < p.n; ++i)
    if (p.pred[i] != p.truth[i]) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return p.prob(a, p.pred[a]) > p.prob(b, p.pred[b]); });
  if (static_cast<int64_t>(idx.size()) > limit) idx.resize(static_cast<size_t>(std::max<int64_t>(limit, 0)));
  return idx;
}

std::vector<int64_t> cell_images(const Predictions& p, int32_t t, int32_t pred, int64_t limit) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < p.n; ++i)
    if (p.truth[i] == t && p.pred[i] == pred) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return p.prob(a, pred) > p.prob(b, pred); });
  if (static_cast<int64_t>(idx.size()) > limit) idx.resize(static_cast<size_t>(std::max<int64_t>(limit, 0)));
  return idx;
}

std::vector<float> gradient_saliency(Sequential& model, const float* x, int64_t cls, int channels_of_flat) {
  const Shape& item = model.item_shape();
  const int64_t numel = item.numel();
  ConstView z = model.forward(ConstView(x, Shape::batched(1, item)), Mode::eval);
  const int64_t k = z.shape[1];
  if (cls < 0 || cls >= k) throw Error("class " + std::to_string(cls) + " is outside the model's " + std::to_string(k));
  // d logit[cls] / d logits is the one-hot row; backward in evaluation mode uses the running
  // batch-norm statistics and passes dropout through, so this is the gradient of what eval computes.
  std::vector<float> dz(static_cast<size_t>(k), 0.0f), dx(static_cast<size_t>(numel));
  dz[static_cast<size_t>(cls)] = 1.0f;
  model.backward(ConstView(dz.data(), Shape{1, k}), View{dx.data(), Shape::batched(1, item)});
  // (C, H, W) -> (H, W): the largest magnitude over channels.
  const int64_t channels = item.rank() == 3 ? item[0] : std::max(channels_of_flat, 1), plane = numel / channels;
  std::vector<float> map(static_cast<size_t>(plane), 0.0f);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < plane; ++i) map[i] = std::max(map[i], std::fabs(dx[c * plane + i]));
  return map;
}

std::vector<float> occlusion_saliency(Sequential& model, const float* x, int64_t cls, int patch, int stride,
                                      const std::vector<float>& fill, int rows, int cols) {
  const Shape& item = model.item_shape();
  // FCN items are (C*H*W): treat them as C square planes.
  int64_t channels = static_cast<int64_t>(fill.size()), h = 0, w = 0;
  if (item.rank() == 3) {
    h = item[1], w = item[2];
    if (item[0] != channels)
      throw Error("occlusion fill of " + std::to_string(channels) + " channel(s) for a model taking " + item.str());
  } else {
    if (channels < 1) throw Error("occlusion needs a fill value per channel");
    if (rows > 0 && cols > 0) {
      h = rows, w = cols;
    } else {
      h = w = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(item.numel() / channels))));
    }
    if (h * w * channels != item.numel())
      throw Error("occlusion of " + std::to_string(channels) + "x" + std::to_string(h) + "x" + std::to_string(w) +
                  " images, but the model takes " + item.str());
  }
  if (patch < 1 || patch > std::min(h, w)) throw Error("occlusion patch " + std::to_string(patch) + " does not fit " + item.str());
  if (stride < 1) throw Error("occlusion stride must be at least 1, not " + std::to_string(stride));
  const int64_t numel = item.numel(), plane = h * w;
  // Positions: every stride, plus a last one flush with the far edge so every pixel is covered.
  auto positions = [&](int64_t size) {
    std::vector<int64_t> v;
    for (int64_t s = 0; s + patch <= size; s += stride) v.push_back(s);
    if (v.back() + patch < size) v.push_back(size - patch);
    return v;
  };
  const std::vector<int64_t> ys = positions(h), xs = positions(w);
  const int64_t count = static_cast<int64_t>(ys.size() * xs.size());

  ConstView z0 = model.forward(ConstView(x, Shape::batched(1, item)), Mode::eval);
  const int64_t k = z0.shape[1];
  if (cls < 0 || cls >= k) throw Error("class " + std::to_string(cls) + " is outside the model's " + std::to_string(k));
  const float base = softmax(z0.data, k)[static_cast<size_t>(cls)];

  std::vector<float> drop_sum(static_cast<size_t>(plane), 0.0f), cover(static_cast<size_t>(plane), 0.0f);
  constexpr int64_t kBatch = 64;
  std::vector<float> xb(static_cast<size_t>(kBatch * numel));
  for (int64_t b = 0; b < count; b += kBatch) {
    const int64_t m = std::min(kBatch, count - b);
    for (int64_t j = 0; j < m; ++j) {
      float* dst = xb.data() + j * numel;
      std::copy(x, x + numel, dst);
      const int64_t y0 = ys[static_cast<size_t>((b + j) / static_cast<int64_t>(xs.size()))];
      const int64_t x0 = xs[static_cast<size_t>((b + j) % static_cast<int64_t>(xs.size()))];
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t yy = y0; yy < y0 + patch; ++yy)
          std::fill_n(dst + c * plane + yy * w + x0, patch, fill[static_cast<size_t>(c)]);
    }
    ConstView z = model.forward(ConstView(xb.data(), Shape::batched(m, item)), Mode::eval);
    for (int64_t j = 0; j < m; ++j) {
      const float drop = base - softmax(z.data + j * k, k)[static_cast<size_t>(cls)];
      const int64_t y0 = ys[static_cast<size_t>((b + j) / static_cast<int64_t>(xs.size()))];
      const int64_t x0 = xs[static_cast<size_t>((b + j) % static_cast<int64_t>(xs.size()))];
      for (int64_t yy = y0; yy < y0 + patch; ++yy)
        for (int64_t xx = x0; xx < x0 + patch; ++xx) {
          drop_sum[yy * w + xx] += drop;
          cover[yy * w + xx] += 1.0f;
        }
    }
  }
  for (int64_t i = 0; i < plane; ++i) drop_sum[i] /= cover[i];
  return drop_sum;
}

std::vector<float> normalise_map(const std::vector<float>& map) {
  float peak = 0;
  for (float v : map) peak = std::max(peak, std::fabs(v));
  std::vector<float> out(map);
  if (peak > 0)
    for (float& v : out) v /= peak;
  return out;
}

}  // namespace tailor
