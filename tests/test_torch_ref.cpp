// Every layer, the loss, a whole small CNN and 1-3 steps of every optimizer against PyTorch 1.13
// on the same weights and batch. The reference files are made by scripts/make_torch_reference.py
// (`make reference`); values agree within 1e-4 relative.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nn/activation.hpp"
#include "nn/batchnorm.hpp"
#include "util/rng.hpp"
#include "nn/layer_factory.hpp"
#include "nn/loss.hpp"
#include "nn/sequential.hpp"
#include "optim/optimizer.hpp"

namespace tailor {
namespace {

using json = nlohmann::json;
const std::string kRefDir = std::string(TAILOR_TEST_DATA) + "/torch_ref/";

json load(const std::string& name) {
  std::ifstream in(kRefDir + name + ".json");
  EXPECT_TRUE(in.good()) << "missing reference file " << name;
  return json::parse(in);
}

std::vector<float> floats(const json& j) { return j.get<std::vector<float>>(); }
Shape shape(const json& j) { return Shape(j.get<std::vector<int64_t>>()); }

// |got - want| <= 1e-4 * max(|want|, 1e-2 * max|want|): relative, with a floor for elements
// that are nearly zero against the rest of the array, and an absolute floor `atol`.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                  float atol = 1e-7f) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float scale = 0;
  for (float w : want) scale = std::max(scale, std::abs(w));
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const float tol = 1e-4f * std::max(std::abs(want[i]), 1e-2f * scale) + atol;
    if (std::abs(got[i] - want[i]) > tol && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", PyTorch " << want[i];
  }
  EXPECT_EQ(bad, 0) << what;
}

// Runs one layer case: forward, backward with the stored dy, compare everything.
void run_layer_case(const std::string& name) {
  SCOPED_TRACE(name);
  const json c = load(name);
  LayerPtr layer = layer_from_json(c.at("layer"));
  const Mode mode = c.at("mode") == "train" ? Mode::train : Mode::eval;
  const Shape in_shape = shape(c.at("input_shape"));
  std::vector<float> x = floats(c.at("input"));

  std::map<std::string, std::vector<float>> values, grads;
  for (Param* p : layer->params()) {
    values[p->name] = floats(c.at("params").at(p->name));
    grads[p->name].assign(p->numel(), NAN);
    ASSERT_EQ(values[p->name].size(), static_cast<size_t>(p->numel())) << p->name;
    p->value = values[p->name].data();
    p->grad = grads[p->name].data();
  }
  for (Param* b : layer->buffers()) {
    values[b->name] = floats(c.at("buffers_before").at(b->name));
    b->value = values[b->name].data();
  }
  if (c.contains("mask")) {
    auto mask = c.at("mask").get<std::vector<int>>();
    static_cast<Dropout*>(layer.get())->set_next_mask(std::vector<uint8_t>(mask.begin(), mask.end()));
  }

  const Shape out_shape = layer->output_shape(in_shape);
  ASSERT_EQ(out_shape.vec(), c.at("output_shape").get<std::vector<int64_t>>());
  std::vector<float> y(out_shape.numel()), dx(in_shape.numel());
  layer->forward(ConstView(x.data(), in_shape), View{y.data(), out_shape}, mode);
  expect_close(y, floats(c.at("output")), "output");

  std::vector<float> dy = floats(c.at("grad_output"));
  layer->backward(ConstView(dy.data(), out_shape), View{dx.data(), in_shape});
  expect_close(dx, floats(c.at("grad_input")), "grad_input");
  for (Param* p : layer->params()) {
    // A convolution's bias followed by batch norm has a gradient of exactly zero (PyTorch's are
    // 1e-16s in float64); tailor's float sums of O(1) terms leave ~1e-6 there.
    const std::vector<float> want = floats(c.at("grad_params").at(p->name));
    float scale = 0;
    for (float w : want) scale = std::max(scale, std::abs(w));
    expect_close(grads[p->name], want, "grad " + p->name, scale < 1e-12f ? 1e-5f : 1e-7f);
  }
  for (Param* b : layer->buffers()) expect_close(values[b->name], floats(c.at("buffers_after").at(b->name)), b->name);
}

TEST(TorchReference, EveryLayerCaseMatches) {
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kRefDir)) {
    const std::string stem = entry.path().stem().string();
    if (stem.rfind("optim_", 0) == 0 || stem.rfind("cross_entropy", 0) == 0 ||
        stem.rfind("distillation", 0) == 0 || stem.rfind("model_", 0) == 0) continue;
    run_layer_case(stem);
    ++cases;
  }
  // linear, conv2d (strided, grouped, depthwise, 5x5), maxpool2d, avgpool2d, lppool2d,
  // batchnorm1d/2d (train and eval), relu, sigmoid, tanh, flatten, dropout, global_avg_pool,
  // residual blocks (identity, projected, eval, tanh, separable)
  EXPECT_GE(cases, 33);
}

class LossCase : public ::testing::TestWithParam<std::string> {};

TEST_P(LossCase, MatchesTorchCrossEntropy) {
  const json c = load(GetParam());
  const Shape s = shape(c.at("logits_shape"));
  std::vector<float> z = floats(c.at("logits")), g(s.numel());
  std::vector<int32_t> labels = c.at("labels").get<std::vector<int32_t>>();
  LossStats st = softmax_cross_entropy(ConstView(z.data(), s), labels.data(), View{g.data(), s});
  const double want = c.at("loss").get<double>();
  EXPECT_NEAR(st.loss_sum / s[0], want, 1e-4 * std::abs(want));
  expect_close(g, floats(c.at("grad_logits")), "grad_logits");
}

INSTANTIATE_TEST_SUITE_P(TorchReference, LossCase, ::testing::Values("cross_entropy", "cross_entropy_large"));

// Knowledge distillation (train --teacher) against torch's cross_entropy and kl_div.
class DistillationCase : public ::testing::TestWithParam<std::string> {};

TEST_P(DistillationCase, MatchesTorchCrossEntropyAndKlDiv) {
  const json c = load(GetParam());
  const Shape s = shape(c.at("logits_shape"));
  std::vector<float> z = floats(c.at("logits")), t = floats(c.at("teacher")), g(s.numel());
  std::vector<int32_t> labels = c.at("labels").get<std::vector<int32_t>>();
  const LossStats st = distillation_loss(ConstView(z.data(), s), labels.data(), t.data(), View{g.data(), s},
                                         c.at("label_smoothing").get<float>(), c.at("weight").get<float>(),
                                         c.at("temperature").get<float>());
  const double want = c.at("loss").get<double>();
  EXPECT_NEAR(st.loss_sum / s[0], want, 1e-4 * std::abs(want));
  expect_close(g, floats(c.at("grad_logits")), "grad_logits");
}

INSTANTIATE_TEST_SUITE_P(TorchReference, DistillationCase, ::testing::Values("distillation", "distillation_smoothed_t4"));

// (case file, channels last, the blocks' batch norm + relu + pool as tailor's BlockTail).
using WholeCnnParam = std::tuple<std::string, bool, bool>;
class WholeCnn : public ::testing::TestWithParam<WholeCnnParam> {};

// The committed PyTorch models (max, avg and L2 pooling; and a CNN of residual stages with a
// global-average-pool head), layer by layer as PyTorch has them and
// with each block's batch norm, relu and pool as one BlockTail (as tailor builds a CNN; fused
// when channels last), with the convolution blocks channels last (as it trains) and planar.
TEST_P(WholeCnn, ForwardBackwardMatchTorch) {
  const auto& [name, channels_last, tails] = GetParam();
  const json c = load(name);
  Sequential model;
  const json& layers = c.at("layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string t = layers[i].at("type");
    if (tails && t == "batchnorm2d" && i + 2 < layers.size() && layers[i + 1].at("type") == "relu") {
      const std::string pool = layers[i + 2].at("type");
      model.add(layer_from_json({{"type", "block_tail"},
                                 {"channels", layers[i].at("channels")},
                                 {"batchnorm", true},
                                 {"activation", "relu"},
                                 {"pool", pool == "maxpool2d" ? "max" : pool == "avgpool2d" ? "avg" : "l2"}}));
      i += 2;
      continue;
    }
    model.add(layer_from_json(layers[i]));
  }
  const Shape in = shape(c.at("input_shape"));
  model.allow_channels_last(channels_last);
  model.finalize(Shape{in[1], in[2], in[3]});
  ASSERT_EQ(model.channels_last(), channels_last);
  ASSERT_EQ(model.params().size(), c.at("params").size());
  for (size_t i = 0; i < model.params().size(); ++i) {
    const json& p = c.at("params")[i];
    // PyTorch's separate ReLU modules shift the later indices; tailor's names count its parts.
    if (!tails) {
      ASSERT_EQ(model.param_names()[i], p.at("name").get<std::string>());
    }
    std::vector<float> v = floats(p.at("value"));
    ASSERT_EQ(v.size(), static_cast<size_t>(model.params()[i]->numel()));
    std::copy(v.begin(), v.end(), model.params()[i]->value);
  }
  std::vector<float> x = floats(c.at("input"));
  std::vector<int32_t> labels = c.at("labels").get<std::vector<int32_t>>();
  ConstView logits = model.forward(ConstView(x.data(), in), Mode::train);
  expect_close(std::vector<float>(logits.data, logits.data + logits.numel()), floats(c.at("logits")), "logits");
  std::vector<float> g(logits.numel());
  LossStats st = softmax_cross_entropy(logits, labels.data(), View{g.data(), logits.shape});
  EXPECT_NEAR(st.loss_sum / in[0], c.at("loss").get<double>(), 1e-4 * c.at("loss").get<double>());
  model.backward(ConstView(g.data(), logits.shape));
  for (size_t i = 0; i < model.params().size(); ++i) {
    const json& want = c.at("grads")[i];
    Param* p = model.params()[i];
    // A conv bias followed by batch norm has an exactly-zero gradient; float32 rounding of an
    // O(1) loss leaves ~1e-7 there, hence the absolute floor.
    expect_close(std::vector<float>(p->grad, p->grad + p->numel()), floats(want.at("value")),
                 "grad " + want.at("name").get<std::string>(), 1e-6f);
  }
  ASSERT_EQ(model.buffers().size(), c.at("buffers_after").size());
  for (size_t i = 0; i < model.buffers().size(); ++i) {  // in the same order as PyTorch's
    const json& b = c.at("buffers_after")[i];
    Param* p = model.buffers()[i];
    expect_close(std::vector<float>(p->value, p->value + p->numel()), floats(b.at("value")), b.at("name"));
  }
}

INSTANTIATE_TEST_SUITE_P(TorchReference, WholeCnn,
                         ::testing::Combine(::testing::Values("model_cnn", "model_cnn_avgpool", "model_cnn_lppool",
                                                              "model_staged"),
                                            ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_ChannelsLast" : "_Planar") +
                                  (std::get<2>(info.param) ? "_BlockTails" : "_Layers");
                         });

class OptimCase : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimCase, ThreeStepsMatchTorch) {
  const json c = load("optim_" + GetParam());
  OptimConfig cfg;
  cfg.kind = parse_optimizer(c.at("optimizer").get<std::string>());
  cfg.lr = c.at("lr").get<float>();
  cfg.momentum = c.at("momentum").get<float>();
  cfg.nesterov = c.at("nesterov").get<bool>();
  cfg.weight_decay = c.at("weight_decay").get<float>();
  cfg.beta1 = c.at("betas")[0].get<float>();
  cfg.beta2 = c.at("betas")[1].get<float>();
  cfg.eps = c.at("eps").get<float>();
  cfg.alpha = c.at("alpha").get<float>();
  std::vector<float> p = floats(c.at("initial"));
  Optimizer opt(cfg, p.size());
  for (int step = 0; step < 3; ++step) {
    std::vector<float> g = floats(c.at("grads")[step]);
    opt.step(p.data(), g.data(), cfg.lr);
    expect_close(p, floats(c.at("after")[step]), GetParam() + " after step " + std::to_string(step + 1));
  }
}

INSTANTIATE_TEST_SUITE_P(TorchReference, OptimCase,
                         ::testing::Values("sgd", "sgd_momentum", "sgd_nesterov", "sgd_weight_decay", "adam",
                                           "adam_weight_decay", "adamw", "rmsprop", "rmsprop_momentum"));

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// The fused batch norm + ReLU (used in the CNN blocks) against batch norm, then ReLU, both
// checked against PyTorch above: same outputs, input and parameter gradients, running stats.
TEST(FusedBatchNormRelu, EqualsBatchNormThenRelu) {
  for (Mode mode : {Mode::train, Mode::eval}) {
    const Shape shape{5, 3, 6, 7};
    BatchNorm fused(3, true, true), plain(3, true, false);
    Activation relu(ActivationKind::relu);
    Rng rng(mode == Mode::train ? 1 : 2);
    std::vector<float> x(shape.numel()), dy(shape.numel());
    for (auto& v : x) v = rng.normal() * 2 + 0.3f;
    for (auto& v : dy) v = rng.normal();
    std::vector<float> pf(6), gf(6), pp(6), gp(6), sf(6, 1.0f), sp(6, 1.0f);
    for (int i = 0; i < 6; ++i) pf[i] = pp[i] = rng.uniform(-1, 1);
    for (int i = 0; i < 3; ++i) sf[i] = sp[i] = rng.uniform(-0.5f, 0.5f);  // running means
    auto bind = [](BatchNorm& l, std::vector<float>& p, std::vector<float>& g, std::vector<float>& st) {
      l.params()[0]->value = p.data(), l.params()[0]->grad = g.data();
      l.params()[1]->value = p.data() + 3, l.params()[1]->grad = g.data() + 3;
      l.buffers()[0]->value = st.data(), l.buffers()[1]->value = st.data() + 3;
    };
    bind(fused, pf, gf, sf);
    bind(plain, pp, gp, sp);
    std::vector<float> yf(x.size()), yb(x.size()), yp(x.size()), dxf(x.size()), dr(x.size()), dxp(x.size());
    fused.forward(ConstView(x.data(), shape), View{yf.data(), shape}, mode);
    plain.forward(ConstView(x.data(), shape), View{yb.data(), shape}, mode);
    relu.forward(ConstView(yb.data(), shape), View{yp.data(), shape}, mode);
    EXPECT_EQ(yf, yp);
    fused.backward(ConstView(dy.data(), shape), View{dxf.data(), shape});
    relu.backward(ConstView(dy.data(), shape), View{dr.data(), shape});
    plain.backward(ConstView(dr.data(), shape), View{dxp.data(), shape});
    expect_close(dxf, dxp, "dx");
    expect_close(gf, gp, "parameter gradients");
    EXPECT_EQ(sf, sp);
  }
}

}  // namespace
}  // namespace tailor
