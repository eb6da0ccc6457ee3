// The analysis behind `tailor inspect` and `tailor serve`: saliency maps checked against
// numeric derivatives and direct occlusion, confusion counts and per-class figures by hand.
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "inspect/analysis.hpp"
#include "nn/init.hpp"
#include "nn/model_spec.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

// A small model with batch-norm running statistics that are not the identity, so evaluation
// mode differs from training mode.
std::unique_ptr<Sequential> small_model(Family family) {
  ModelSpec spec = default_spec(family);
  spec.height = spec.width = 8;
  spec.classes = 4;
  spec.dropout = 0.3f;  // passes straight through in evaluation mode
  if (family == Family::cnn) spec.channels = {3}, spec.hidden = {6};
  else spec.hidden = {10};
  auto model = build_model(spec, 1);
  Rng rng(7);
  init_params(*model, InitKind::kaiming_uniform, spec.activation, rng);
  for (Param* b : model->buffers())
    for (int64_t i = 0; i < b->numel(); ++i)
      b->value[i] = b->name == "running_var" ? 0.5f + rng.uniform() : 0.3f * (rng.uniform() - 0.5f);
  return model;
}

std::vector<float> random_image(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = 2 * rng.uniform() - 1;
  return x;
}

float logit(Sequential& m, const std::vector<float>& x, int64_t cls) {
  return m.forward(ConstView(x.data(), Shape::batched(1, m.item_shape())), Mode::eval).data[cls];
}

void check_gradient_saliency(Family family) {
  auto model = small_model(family);
  std::vector<float> x = random_image(64, 3);
  for (int64_t cls : {0, 3}) {
    const std::vector<float> sal = gradient_saliency(*model, x.data(), cls);
    ASSERT_EQ(sal.size(), 64u);
    int checked = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float h = 1e-2f, keep = x[i];
      x[i] = keep + h;
      const double up = logit(*model, x, cls);
      x[i] = keep - h;
      const double down = logit(*model, x, cls);
      x[i] = keep;
      const double numeric = std::fabs((up - down) / (2 * h));
      // A relu or max-pool kink inside [x - h, x + h] makes the central difference meaningless;
      // a one-sided pair that disagrees with the other side marks it.
      const double right = (up - logit(*model, x, cls)) / h, left = (logit(*model, x, cls) - down) / h;
      if (std::fabs(right - left) > 1e-2 * (std::fabs(right) + std::fabs(left)) + 1e-3) continue;
      EXPECT_NEAR(sal[i], numeric, 2e-3 + 1e-2 * numeric) << "pixel " << i << " class " << cls;
      ++checked;
    }
    EXPECT_GT(checked, 48) << "too many pixels near a kink to check";
  }
}

TEST(Saliency, GradientIsTheClassLogitsInputGradientFcn) { check_gradient_saliency(Family::fcn); }
TEST(Saliency, GradientIsTheClassLogitsInputGradientCnn) { check_gradient_saliency(Family::cnn); }

TEST(Saliency, OcclusionIsTheProbabilityDropOfTheCoveringSquares) {
  auto model = small_model(Family::cnn);
  const std::vector<float> x = random_image(64, 5);
  const int64_t cls = 2;
  const int patch = 3, stride = 2;
  const std::vector<float> map = occlusion_saliency(*model, x.data(), cls, patch, stride, {-1.0f});
  ASSERT_EQ(map.size(), 64u);
  auto prob = [&](const std::vector<float>& img) {
    ConstView z = model->forward(ConstView(img.data(), Shape{1, 1, 8, 8}), Mode::eval);
    return softmax(z.data, 4)[cls];
  };
  auto covered = [&](int y0, int x0) {
    std::vector<float> img = x;
    for (int y = y0; y < y0 + patch; ++y)
      for (int xx = x0; xx < x0 + patch; ++xx) img[y * 8 + xx] = -1.0f;
    return prob(img);
  };
  const float base = prob(x);
  // Square origins along an axis of 8 with patch 3, stride 2: 0, 2, 4 and the flush 5.
  // Pixel (0, 0) is covered only by the square at (0, 0); pixel (7, 7) only by (5, 5);
  // pixel (2, 0) by (0, 0) and (2, 0).
  EXPECT_NEAR(map[0], base - covered(0, 0), 1e-6);
  EXPECT_NEAR(map[63], base - covered(5, 5), 1e-6);
  EXPECT_NEAR(map[16], ((base - covered(0, 0)) + (base - covered(2, 0))) / 2, 1e-6);
  // Covering with the image's own values changes nothing.
  const std::vector<float> flat(64, 0.25f);
  for (float v : occlusion_saliency(*model, flat.data(), cls, patch, stride, {0.25f})) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(occlusion_saliency(*model, x.data(), cls, 9, 1, {0.0f}), Error);
}

TEST(Saliency, NormaliseScalesByTheLargestMagnitude) {
  EXPECT_EQ(normalise_map({1.0f, -4.0f, 2.0f}), (std::vector<float>{0.25f, -1.0f, 0.5f}));
  EXPECT_EQ(normalise_map({0.0f, 0.0f}), (std::vector<float>{0.0f, 0.0f}));
}

// 3 classes, 7 images: truth 0 0 0 1 1 2 2, predicted 0 1 0 1 2 2 0.
Predictions hand_made() {
  Predictions p;
  p.n = 7, p.classes = 3;
  p.truth = {0, 0, 0, 1, 1, 2, 2};
  p.pred = {0, 1, 0, 1, 2, 2, 0};
  const float top[] = {0.9f, 0.6f, 0.8f, 0.7f, 0.95f, 0.5f, 0.6f};
  p.probs.assign(21, 0.0f);
  for (int i = 0; i < 7; ++i) {
    for (int k = 0; k < 3; ++k) p.probs[i * 3 + k] = (1 - top[i]) / 2;
    p.probs[i * 3 + p.pred[i]] = top[i];
  }
  return p;
}

TEST(Confusion, CountsAndClassFiguresByHand) {
  const Predictions p = hand_made();
  const std::vector<int64_t> c = confusion_counts(p);
  EXPECT_EQ(c, (std::vector<int64_t>{2, 1, 0, 0, 1, 1, 1, 0, 1}));
  const std::vector<ClassStats> s = class_stats(c, 3);
  // Class 0: support 3, predicted 3 (two of its own, one of class 2), correct 2.
  EXPECT_EQ(s[0].support, 3);
  EXPECT_EQ(s[0].predicted, 3);
  EXPECT_EQ(s[0].correct, 2);
  EXPECT_NEAR(s[0].precision, 200.0 / 3, 1e-9);
  EXPECT_NEAR(s[0].recall, 200.0 / 3, 1e-9);
  // Class 1: support 2, predicted 2, correct 1 -> 50 / 50 / 50.
  EXPECT_NEAR(s[1].f1, 50.0, 1e-9);
  // Class 2: support 2, predicted 2, correct 1.
  EXPECT_NEAR(s[2].recall, 50.0, 1e-9);
  // A class never predicted has precision 0, not NaN.
  const std::vector<ClassStats> none = class_stats({1, 0, 1, 0}, 2);
  EXPECT_EQ(none[1].precision, 0.0);
  EXPECT_EQ(none[1].f1, 0.0);
}

TEST(Confusion, MistakesAndCellsMostConfidentFirst) {
  const Predictions p = hand_made();
  // Mistakes: image 1 (0.6 for class 1), 4 (0.95 for 2), 6 (0.6 for 0): 4, then 1 and 6 in order.
  EXPECT_EQ(confident_mistakes(p, 10), (std::vector<int64_t>{4, 1, 6}));
  EXPECT_EQ(confident_mistakes(p, 1), (std::vector<int64_t>{4}));
  EXPECT_EQ(cell_images(p, 0, 0, 10), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(cell_images(p, 2, 1, 10), (std::vector<int64_t>{}));
}

TEST(Confusion, SoftmaxIsStableForLargeLogits) {
  const float z[] = {1000.0f, 999.0f, -1000.0f};
  const std::vector<float> p = softmax(z, 3);
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// Evaluation depends only on the parameters and the saved statistics: a training step's forward
// and backward in between (batch statistics, the block tails' winners and buffers, dropout)
// leaves the next evaluation of the same images bit for bit as it was, once the running
// statistics are put back; for CNNs with each pool, with and without batch norm, and an FCN, at
// several batch sizes. So evaluation, inspect and serve give what the checkpoint holds.
TEST(Infer, EvaluationDependsOnlyOnTheSavedState) {
  for (int variant = 0; variant < 5; ++variant) {
    ModelSpec spec = default_spec(variant == 2 ? Family::fcn : Family::cnn);
    spec.height = spec.width = 12;
    spec.classes = 5;
    spec.batchnorm = variant != 1;
    if (variant != 2) spec.channels = {4, 6}, spec.hidden = {8};
    if (variant == 3) spec.pool = kernels::PoolKind::avg;
    if (variant == 4) spec.pool = kernels::PoolKind::l2;
    auto model = build_model(spec, 1);
    Rng rng(11);
    init_params(*model, InitKind::kaiming_uniform, spec.activation, rng);
    for (Param* b : model->buffers())
      for (int64_t i = 0; i < b->numel(); ++i)
        b->value[i] = b->name == "running_var" ? 0.5f + rng.uniform() : rng.uniform() - 0.5f;
    const std::vector<float> state(model->buffer_values(), model->buffer_values() + model->num_buffer_values());
    for (int64_t n : {1, 7, 32}) {
      const std::vector<float> x = random_image(n * 144, 100 + n), other = random_image(n * 144, 200 + n);
      const Shape shape{n, 144};
      ConstView a = model->infer(ConstView(x.data(), shape));
      const std::vector<float> expected(a.data, a.data + a.numel());
      ConstView t = model->forward(ConstView(other.data(), shape), Mode::train);
      std::vector<float> dz(t.numel(), 0.5f);
      model->backward(ConstView(dz.data(), t.shape));
      std::copy(state.begin(), state.end(), model->buffer_values());
      ConstView b = model->infer(ConstView(x.data(), shape));
      ASSERT_EQ(b.numel(), static_cast<int64_t>(expected.size()));
      EXPECT_EQ(0, std::memcmp(b.data, expected.data(), expected.size() * sizeof(float))) << "variant " << variant << " n " << n;
    }
  }
}

}  // namespace
}  // namespace tailor
