// Optimizer steps against values worked by hand, and the learning-rate schedules.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

TEST(Optimizer, SgdPlainAndMomentumByHand) {
  OptimConfig c;
  c.kind = OptimKind::sgd;
  c.momentum = 0.9f;
  Optimizer o(c, 1);
  float p = 1.0f, g = 0.5f;
  o.step(&p, &g, 0.1f);  // buf = 0.5, p = 1 - 0.05
  EXPECT_FLOAT_EQ(p, 0.95f);
  o.step(&p, &g, 0.1f);  // buf = 0.9*0.5 + 0.5 = 0.95, p = 0.95 - 0.095
  EXPECT_FLOAT_EQ(p, 0.855f);
  c.nesterov = true;
  Optimizer n(c, 1);
  p = 1.0f;
  n.step(&p, &g, 0.1f);  // buf = 0.5, g' = 0.5 + 0.9*0.5 = 0.95, p = 1 - 0.095
  EXPECT_FLOAT_EQ(p, 0.905f);
}

TEST(Optimizer, AdamFirstStepIsLrTimesSign) {
  // m1 = 0.1 g, v1 = 0.001 g^2; bias-corrected m = g, v = g^2: step = lr * g / (|g| + eps).
  OptimConfig c;
  c.kind = OptimKind::adam;
  Optimizer o(c, 2);
  float p[2] = {1.0f, -2.0f}, g[2] = {3.0f, -0.25f};
  o.step(p, g, 0.01f);
  EXPECT_NEAR(p[0], 0.99f, 1e-6);
  EXPECT_NEAR(p[1], -1.99f, 1e-6);
  EXPECT_EQ(o.steps(), 1);
}

TEST(Optimizer, AdamWDecaysWeightsDirectly) {
  // A zero gradient leaves only the decoupled decay: p *= 1 - lr * wd.
  OptimConfig c;
  c.kind = OptimKind::adamw;
  c.weight_decay = 0.5f;
  Optimizer o(c, 1);
  float p = 2.0f, g = 0.0f;
  o.step(&p, &g, 0.1f);
  EXPECT_FLOAT_EQ(p, 2.0f * (1.0f - 0.05f));
}

TEST(Optimizer, RmspropFirstStepByHand) {
  // v = 0.01 g^2, update = lr * g / (sqrt(v) + eps) = lr * 10 * sign(g)
  OptimConfig c;
  c.kind = OptimKind::rmsprop;
  Optimizer o(c, 1);
  float p = 0.0f, g = 4.0f;
  o.step(&p, &g, 0.001f);
  EXPECT_NEAR(p, -0.01f, 1e-7);
}

// A data-parallel step updates the weights in parts, one range a thread: begin_step() and
// update() over ranges that cover the arena give step()'s weights and state bit for bit, for
// every rule (with momentum, weight decay and Nesterov where they apply), over several steps.
TEST(Optimizer, UpdateInPartsIsStepBitForBit) {
  const size_t n = 70001;  // above the 32,768 at which step() splits over threads
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  std::vector<float> start(n), grads(3 * n);
  for (float& v : start) v = normal(gen);
  for (float& v : grads) v = normal(gen);
  for (OptimKind kind : {OptimKind::sgd, OptimKind::adam, OptimKind::adamw, OptimKind::rmsprop}) {
    OptimConfig c;
    c.kind = kind;
    c.momentum = 0.9f;
    c.nesterov = kind == OptimKind::sgd;
    c.weight_decay = 0.01f;
    Optimizer whole(c, n), parts(c, n);
    std::vector<float> a = start, b = start;
    for (int s = 0; s < 3; ++s) {
      const float* g = grads.data() + static_cast<size_t>(s) * n;
      whole.step(a.data(), g, 0.01f);
      parts.begin_step();
      const size_t cuts[] = {0, 12345, 40000, n};
      for (int k = 0; k < 3; ++k) parts.update(b.data(), g, 0.01f, cuts[k], cuts[k + 1]);
    }
    SCOPED_TRACE(optimizer_name(kind));
    EXPECT_EQ(whole.steps(), parts.steps());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(float)), 0);
    EXPECT_EQ(whole.state(), parts.state());
    EXPECT_NE(a, start);
  }
}

TEST(Optimizer, UnknownNameIsAnError) { EXPECT_THROW(parse_optimizer("adagrad"), Error); }

TEST(Schedule, Values) {
  ScheduleConfig c;
  c.kind = ScheduleKind::constant;
  EXPECT_FLOAT_EQ(lr_at(c, 0.1f, 50, 100, 10), 0.1f);
  c.kind = ScheduleKind::cosine;
  EXPECT_FLOAT_EQ(lr_at(c, 0.1f, 0, 100, 10), 0.1f);
  EXPECT_NEAR(lr_at(c, 0.1f, 50, 100, 10), 0.05f, 1e-7);
  EXPECT_NEAR(lr_at(c, 0.1f, 100, 100, 10), 0.0f, 1e-9);
  c.kind = ScheduleKind::step;
  c.step_epochs = 3;
  EXPECT_FLOAT_EQ(lr_at(c, 0.1f, 29, 100, 10), 0.1f);  // epoch 2
  EXPECT_NEAR(lr_at(c, 0.1f, 30, 100, 10), 0.01f, 1e-8);  // epoch 3
  c.kind = ScheduleKind::onecycle;
  EXPECT_NEAR(lr_at(c, 1.0f, 0, 100, 10), 1.0f / 25, 1e-6);
  EXPECT_NEAR(lr_at(c, 1.0f, 30, 100, 10), 1.0f, 1e-6);
  EXPECT_NEAR(lr_at(c, 1.0f, 100, 100, 10), 1e-4f, 1e-7);
  EXPECT_THROW(parse_schedule("linear"), Error);
}

}  // namespace
}  // namespace tailor
