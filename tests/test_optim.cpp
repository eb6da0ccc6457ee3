// Optimizer steps against values worked by hand, and the learning-rate schedules.
#include <cmath>

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
