#include "train/evaluate.hpp"

#include <algorithm>
#include <numeric>

#include "data/augment.hpp"
#include "nn/loss.hpp"

namespace tailor {

EvalResult evaluate(Sequential& model, const Dataset& data, const std::vector<uint32_t>* indices,
                    Normalization norm, int64_t batch, std::vector<float>* logits, bool tta_flip) {
  std::vector<uint32_t> all;
  const std::vector<uint32_t>* idx = indices;
  if (!indices) {
    all.resize(data.size());
    std::iota(all.begin(), all.end(), 0u);
    idx = &all;
  }
  const int64_t n = static_cast<int64_t>(idx->size()), pixels = data.pixels();
  EvalResult r;
  if (n == 0) return r;
  batch = std::max<int64_t>(1, std::min(batch, n));
  std::vector<float> x(batch * pixels), first, mean;
  std::vector<int32_t> y(batch);
  if (logits) logits->clear();
  double loss = 0;
  int64_t correct = 0;
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t m = std::min(batch, n - b);
    gather_batch(data, idx->data() + b, m, norm, x.data(), y.data());
    ConstView out = model.infer(ConstView(x.data(), Shape{m, pixels}));
    if (tta_flip) {
      first.assign(out.data, out.data + out.numel());
      flip_batch(x.data(), m, data.channels, data.rows, data.cols);
      const ConstView mirrored = model.infer(ConstView(x.data(), Shape{m, pixels}));
      mean.resize(first.size());
      for (size_t i = 0; i < mean.size(); ++i) mean[i] = (first[i] + mirrored.data[i]) * 0.5f;
      out = ConstView(mean.data(), mirrored.shape);
    }
    LossStats st = softmax_cross_entropy(out, y.data(), View{});
    loss += st.loss_sum;
    correct += st.correct;
    if (logits) logits->insert(logits->end(), out.data, out.data + out.numel());
  }
  r.count = n;
  r.loss = n ? loss / n : 0;
  r.acc = n ? 100.0 * static_cast<double>(correct) / n : 0;
  return r;
}

}  // namespace tailor
