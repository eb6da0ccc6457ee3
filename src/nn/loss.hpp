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

// Knowledge distillation (Hinton, Vinyals and Dean 2015): a teacher's logits t (N, K) soften the
// targets. With weight w and temperature T the loss of row i is
//   (1 - w) * CE_i + w * T^2 * KL(softmax(t_i / T) || softmax(z_i / T)),
// CE_i as softmax_cross_entropy's (label smoothing included); T^2 keeps the soft term's gradient,
//   dlogits_i = ((1 - w) * (softmax(z_i) - target_i) + w * T * (softmax(z_i / T) - softmax(t_i / T))) / N,
// on the scale of the hard one's. `correct` counts against the labels, as without a teacher.
LossStats distillation_loss(ConstView logits, const int32_t* labels, const float* teacher, View dlogits,
                            float label_smoothing, float weight, float temperature);

}  // namespace tailor
