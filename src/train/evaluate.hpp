#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.hpp"
#include "nn/sequential.hpp"

namespace tailor {

struct EvalResult {
  double loss = 0;  // mean cross-entropy
  double acc = 0;   // percent correct
  int64_t count = 0;
};

// Runs the model in evaluation mode over `indices` of `data` (all images when null), in
// batches of `batch`. The batch size and thread count fix the arithmetic, so the same model,
// data and settings give bit-identical logits. When `logits` is given it receives (n, classes).
// With tta_flip every picture's logits are the mean of its own and its left-right mirror's,
// ((a + b) * 0.5), and the loss and accuracy are those of the mean.
EvalResult evaluate(Sequential& model, const Dataset& data, const std::vector<uint32_t>* indices,
                    Normalization norm, int64_t batch, std::vector<float>* logits = nullptr, bool tta_flip = false);

}  // namespace tailor
