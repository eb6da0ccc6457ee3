#pragma once
#include <cstdint>

#include "tensor/tensor.hpp"

namespace tailor {

struct LossStats {
  double loss_sum = 0;   // sum over the batch of -log softmax(logits)[label]
  int64_t correct = 0;   // rows whose arg-max equals the label
};

// Softmax cross-entropy, accuracy and gradient in one pass over logits (N, K):
//   loss_i = logsumexp(z_i) - z_i[y_i] (max-shifted, stable for large logits),
//   dlogits_i = (softmax(z_i) - onehot(y_i)) / N   (the gradient of the batch mean),
// with label smoothing s the target is (1 - s) onehot + s / K. dlogits may be empty.
LossStats softmax_cross_entropy(ConstView logits, const int32_t* labels, View dlogits,
                                float label_smoothing = 0.0f);

}  // namespace tailor
