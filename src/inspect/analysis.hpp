#pragma once
// Why a model decides as it does: predictions over a data set, the confusion matrix, per-class
// figures, and saliency maps for one image. Shared by `tailor inspect` and `tailor serve`.
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "nn/sequential.hpp"

namespace tailor {

// Softmax probabilities of every image of a data set, in evaluation mode.
struct Predictions {
  int64_t n = 0, classes = 0;
  std::vector<float> probs;     // (n, classes)
  std::vector<int32_t> pred;    // (n) arg-max of probs (the first on a tie, as evaluate counts)
  std::vector<int32_t> truth;   // (n) the data set's labels
  float prob(int64_t i, int64_t k) const { return probs[static_cast<size_t>(i * classes + k)]; }
};

// Runs the model over all of `data` in batches of `batch` (the same arithmetic as evaluate(), so
// pred matches what `tailor eval` counts).
Predictions predict_dataset(Sequential& model, const Dataset& data, Normalization norm, int64_t batch, bool tta_flip = false);

// counts[t * classes + p]: images of true class t predicted as p.
std::vector<int64_t> confusion_counts(const Predictions& p);

struct ClassStats {
  int64_t support = 0;    // images of this class
  int64_t predicted = 0;  // images predicted as this class
  int64_t correct = 0;    // of this class and predicted as it
  double precision = 0;   // correct / predicted (percent; 0 when nothing was predicted as it)
  double recall = 0;      // correct / support (percent): the class's own accuracy
  double f1 = 0;          // harmonic mean of precision and recall (percent)
};
std::vector<ClassStats> class_stats(const std::vector<int64_t>& counts, int64_t classes);

// Indices of the misclassified images, the most confident mistake (highest probability given to
// the wrong class) first; at most `limit`.
std::vector<int64_t> confident_mistakes(const Predictions& p, int64_t limit);

// Indices of images with true class t predicted as p, the highest probability of p first.
std::vector<int64_t> cell_images(const Predictions& p, int32_t t, int32_t pred, int64_t limit);

// x: one normalised image (item_shape of the model) of `channels` planes (an FCN's flat input
// too). Gradient saliency: |d logit[cls] / d x| per pixel (the largest over channels), in
// evaluation mode. Not scaled.
std::vector<float> gradient_saliency(Sequential& model, const float* x, int64_t cls, int channels = 1);

// Occlusion sensitivity: for every position of a `patch` x `patch` square moved with `stride`,
// the drop in softmax probability of `cls` when the square is set to `fill` in every channel
// (normalised pixel values, one per channel, usually those of black); each pixel gets the mean
// drop of the squares covering it. Positive = the pixel supports the class. All occluded copies
// go through the model in batches. An FCN's flat input is fill.size() planes of rows x cols
// (0: square planes).
std::vector<float> occlusion_saliency(Sequential& model, const float* x, int64_t cls, int patch,
                                      int stride, const std::vector<float>& fill, int rows = 0, int cols = 0);

// Scales a map to [0, 1] by its largest absolute value (all zeros stay zeros).
std::vector<float> normalise_map(const std::vector<float>& map);

// Softmax of one row of logits, max-shifted.
std::vector<float> softmax(const float* logits, int64_t k);

}  // namespace tailor
