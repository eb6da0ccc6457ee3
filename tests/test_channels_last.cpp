// Channels last: a CNN's convolution blocks keep their activations as (N, H, W, C). Every layer
// that runs that way must give what its planar (N, C, H, W) path gives on the transposed
// arrays, and a whole model must give the same logits, gradients and input gradient either way.
// (The planar paths are checked against numeric gradients and PyTorch elsewhere.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "nn/activation.hpp"
#include "nn/batchnorm.hpp"
#include "nn/block_tail.hpp"
#include "nn/init.hpp"
#include "nn/loss.hpp"
#include "nn/model_spec.hpp"
#include "nn/pool.hpp"
#include "nn/sequential.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

std::vector<float> normal(size_t n, Rng& rng, float scale = 1.0f, float shift = 0.0f) {
  std::vector<float> v(n);
  for (float& x : v) x = shift + scale * rng.normal();
  return v;
}

std::vector<float> to_nhwc(const std::vector<float>& v, const Shape& s) {
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t p = 0; p < h * w; ++p) out[(i * h * w + p) * c + k] = v[(i * c + k) * h * w + p];
  return out;
}

std::vector<float> to_nchw(const float* v, const Shape& s) {
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  std::vector<float> out(s.numel());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t p = 0; p < h * w; ++p) out[(i * c + k) * h * w + p] = v[(i * h * w + p) * c + k];
  return out;
}

// |a - b| <= tol * (1 + |b|) everywhere, the first few offenders reported.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tol * (1.0f + std::fabs(b[i]))) && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: " << a[i] << " vs " << b[i];
  EXPECT_EQ(bad, 0) << what;
}

// |a - b| <= tol * max |b|: for sums of many terms, whose small elements are as uncertain in
// absolute terms as the large ones.
void expect_close_scaled(const std::vector<float>& a, const std::vector<float>& b, float tol, const std::string& what) {
  float scale = 0;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  ASSERT_GT(scale, 0.0f) << what;
  std::vector<float> as(a.size()), bs(b.size());
  for (size_t i = 0; i < a.size(); ++i) as[i] = a[i] / scale;
  for (size_t i = 0; i < b.size(); ++i) bs[i] = b[i] / scale;
  int bad = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (!(std::fabs(as[i] - bs[i]) <= tol) && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: " << a[i] << " vs " << b[i] << " (largest " << scale << ")";
  EXPECT_EQ(bad, 0) << what;
}

std::vector<float> copy(const float* p, int64_t n) { return std::vector<float>(p, p + n); }

// Batch norm (with and without its fused relu), training then evaluation mode: y, dx, the
// parameter gradients and the running statistics, channel counts around a vector of 16.
TEST(ChannelsLast, BatchNormEqualsPlanar) {
  kernels::set_threads(2);
  Rng rng(31);
  for (const Shape& s : {Shape{3, 2, 3, 5}, Shape{4, 16, 6, 6}, Shape{2, 20, 5, 3}, Shape{5, 32, 7, 7}})
    for (bool relu : {false, true}) {
      SCOPED_TRACE(s.str() + (relu ? " relu" : ""));
      const int64_t c = s[1];
      BatchNorm planar(c, true, relu), last(c, true, relu);
      ASSERT_TRUE(last.supports_channels_last());
      last.set_channels_last(true);
      std::vector<float> values(4 * c, 0.0f), grads_p(2 * c), grads_l(2 * c);
      const std::vector<float> gamma = normal(c, rng, 0.5f, 1.0f), beta = normal(c, rng, 0.3f);
      for (BatchNorm* b : {&planar, &last}) {
        auto p = b->params();
        float* base = b == &planar ? values.data() : values.data() + 2 * c;
        p[0]->value = base, p[1]->value = base + c;
        p[0]->grad = (b == &planar ? grads_p : grads_l).data(), p[1]->grad = p[0]->grad + c;
        std::copy(gamma.begin(), gamma.end(), p[0]->value);
        std::copy(beta.begin(), beta.end(), p[1]->value);
      }
      std::vector<float> stats_p(2 * c), stats_l(2 * c);
      for (int64_t i = 0; i < c; ++i) stats_p[c + i] = stats_l[c + i] = 1.0f;
      planar.buffers()[0]->value = stats_p.data(), planar.buffers()[1]->value = stats_p.data() + c;
      last.buffers()[0]->value = stats_l.data(), last.buffers()[1]->value = stats_l.data() + c;

      for (Mode mode : {Mode::train, Mode::eval}) {
        SCOPED_TRACE(mode == Mode::train ? "train" : "eval");
        const std::vector<float> x = normal(s.numel(), rng, 2.0f, 0.5f), dy = normal(s.numel(), rng);
        const std::vector<float> xl = to_nhwc(x, s), dyl = to_nhwc(dy, s);
        std::vector<float> yp(x.size()), yl(x.size()), dxp(x.size()), dxl(x.size());
        planar.forward(ConstView(x.data(), s), View{yp.data(), s}, mode);
        last.forward(ConstView(xl.data(), s), View{yl.data(), s}, mode);
        expect_close(to_nchw(yl.data(), s), yp, 1e-5f, "y");
        planar.backward(ConstView(dy.data(), s), View{dxp.data(), s});
        last.backward(ConstView(dyl.data(), s), View{dxl.data(), s});
        expect_close(to_nchw(dxl.data(), s), dxp, 1e-4f, "dx");
        expect_close(grads_l, grads_p, 1e-4f, "dweight, dbias");
        expect_close(stats_l, stats_p, 1e-5f, "running statistics");
      }
    }
}

// A block tail (batch norm + relu + 2x2 pool) channels last runs as the fused kernel pair; planar
// it runs its parts in turn. Both give the same output, input gradient, parameter gradients and
// running statistics, for every pool, odd sizes (inputs in no window), channel counts around 16,
// ties inside windows, in training and evaluation mode.
TEST(ChannelsLast, FusedBlockTailEqualsItsParts) {
  kernels::set_threads(2);
  Rng rng(34);
  for (kernels::PoolKind kind : {kernels::PoolKind::max, kernels::PoolKind::avg, kernels::PoolKind::l2})
    for (const Shape& s : {Shape{3, 16, 6, 8}, Shape{2, 20, 7, 5}, Shape{4, 32, 14, 14}, Shape{2, 3, 3, 3}}) {
      SCOPED_TRACE(s.str() + " " + kernels::pool_name(kind));
      const int64_t c = s[1];
      BlockTail planar(c, true, ActivationKind::relu, kind), last(c, true, ActivationKind::relu, kind);
      ASSERT_TRUE(last.supports_channels_last());
      last.set_channels_last(true);
      ASSERT_TRUE(last.fused());
      ASSERT_FALSE(planar.fused());
      std::vector<float> values(2 * c), grads_p(2 * c), grads_l(2 * c), stats_p(2 * c, 1.0f), stats_l(2 * c, 1.0f);
      for (int64_t i = 0; i < c; ++i) values[i] = 1.0f + 0.3f * rng.normal(), values[c + i] = 0.2f * rng.normal();
      for (BlockTail* b : {&planar, &last}) {
        auto p = b->params();
        p[0]->value = values.data(), p[1]->value = values.data() + c;
        p[0]->grad = (b == &planar ? grads_p : grads_l).data(), p[1]->grad = p[0]->grad + c;
        std::vector<float>& st = b == &planar ? stats_p : stats_l;
        b->buffers()[0]->value = st.data(), b->buffers()[1]->value = st.data() + c;
      }
      const Shape so = last.output_shape(s);
      for (Mode mode : {Mode::train, Mode::eval}) {
        SCOPED_TRACE(mode == Mode::train ? "train" : "eval");
        // Ties inside windows (values from a small set) exercise the first-maximum rule.
        std::vector<float> x(s.numel());
        for (float& v : x) v = static_cast<float>(static_cast<int>(rng.below(9)) - 3) * 0.5f;
        const std::vector<float> dy = normal(so.numel(), rng);
        const std::vector<float> xl = to_nhwc(x, s), dyl = to_nhwc(dy, so);
        std::vector<float> yp(so.numel()), yl(so.numel(), NAN), dxp(x.size()), dxl(x.size(), NAN);
        planar.forward(ConstView(x.data(), s), View{yp.data(), so}, mode);
        last.forward(ConstView(xl.data(), s), View{yl.data(), so}, mode);
        expect_close_scaled(to_nchw(yl.data(), so), yp, 1e-5f, "y");
        planar.backward(ConstView(dy.data(), so), View{dxp.data(), s});
        last.backward(ConstView(dyl.data(), so), View{dxl.data(), s});
        expect_close_scaled(to_nchw(dxl.data(), s), dxp, 1e-4f, "dx");
        expect_close_scaled(grads_l, grads_p, 1e-4f, "dweight, dbias");
        expect_close_scaled(stats_l, stats_p, 1e-5f, "running statistics");
        const std::vector<float> g = grads_l;
        std::fill(grads_l.begin(), grads_l.end(), NAN);
        last.backward(ConstView(dyl.data(), so), View{});  // no dx: the parameter gradients only
        EXPECT_EQ(grads_l, g) << "gradients without dx";
      }
    }
}

// Max and avg pooling compute each output from the same four floats in the same order either
// way, so channels last equals planar bit for bit; L2's squares may be contracted into fused
// multiply-adds differently by the two loops, so it agrees within rounding. Flatten moves floats
// and computes none.
TEST(ChannelsLast, PoolsAndFlattenEqualPlanar) {
  for (kernels::PoolKind kind : {kernels::PoolKind::max, kernels::PoolKind::avg, kernels::PoolKind::l2}) {
  SCOPED_TRACE(kernels::pool_name(kind));
  Rng rng(32);
  const Shape s{3, 20, 9, 6};
  Pool2d planar(kind, 2), last(kind, 2);
  ASSERT_TRUE(last.supports_channels_last());
      last.set_channels_last(true);
  Pool2d three(kind, 3);
  EXPECT_FALSE(three.supports_channels_last()) << "only 2x2 pooling runs channels last";
  const Shape so = planar.output_shape(s);
  const std::vector<float> x = normal(s.numel(), rng), dy = normal(so.numel(), rng);
  std::vector<float> yp(so.numel()), yl(so.numel()), dxp(x.size()), dxl(x.size());
  planar.forward(ConstView(x.data(), s), View{yp.data(), so}, Mode::train);
  const std::vector<float> xl = to_nhwc(x, s);
  last.forward(ConstView(xl.data(), s), View{yl.data(), so}, Mode::train);
  const bool exact = kind != kernels::PoolKind::l2;
  if (exact) {
    EXPECT_EQ(to_nchw(yl.data(), so), yp);
  }
  expect_close_scaled(to_nchw(yl.data(), so), yp, 1e-6f, "y");
  planar.backward(ConstView(dy.data(), so), View{dxp.data(), s});
  const std::vector<float> dyl = to_nhwc(dy, so);
  last.backward(ConstView(dyl.data(), so), View{dxl.data(), s});
  if (exact) {
    EXPECT_EQ(to_nchw(dxl.data(), s), dxp);
  }
  expect_close_scaled(to_nchw(dxl.data(), s), dxp, 1e-6f, "dx");

  // Flatten of a channels-last input gives PyTorch's (c, h, w) order, and backward undoes it.
  Flatten flat;
  ASSERT_TRUE(flat.supports_channels_last());
      flat.set_channels_last(true);
  const Shape sf = flat.output_shape(so);
  std::vector<float> f(sf.numel()), back(so.numel());
  flat.forward(ConstView(yl.data(), so), View{f.data(), sf}, Mode::train);
  EXPECT_EQ(f, to_nchw(yl.data(), so));
  flat.backward(ConstView(f.data(), sf), View{back.data(), so});
  EXPECT_EQ(back, yl);
  }
}

// Whole CNNs (with and without batch norm, channel counts that are and are not multiples of 16,
// dropout in the head): the same parameters give the same logits, loss gradients and input
// gradient with the blocks channels last as planar. Evaluation through infer (the fused tail)
// equals forward in evaluation mode bit for bit in both.
TEST(ChannelsLast, WholeCnnEqualsPlanar) {
  kernels::set_threads(2);
  struct Case {
    std::vector<int64_t> channels;
    bool batchnorm;
    int64_t in_channels = 1;  // 3: colour, the first convolution taking planar input
  };
  for (const Case& cs : {Case{{16, 32}, true}, Case{{12, 24}, true}, Case{{8, 16, 20}, true}, Case{{16, 32}, false},
                         Case{{16, 32}, true, 3}, Case{{12, 24}, false, 3}})
  for (kernels::PoolKind kind : {kernels::PoolKind::max, kernels::PoolKind::avg, kernels::PoolKind::l2}) {
    ModelSpec spec = default_spec(Family::cnn);
    spec.pool = kind;
    spec.channels = cs.channels;
    spec.hidden = {30};
    spec.batchnorm = cs.batchnorm;
    spec.dropout = 0.0f;
    spec.in_channels = cs.in_channels;
    SCOPED_TRACE(::testing::Message() << cs.in_channels << " input channel(s), " << cs.channels.size() << " blocks, first " << cs.channels[0]
                                      << (cs.batchnorm ? ", batch norm" : "") << ", " << kernels::pool_name(kind));
    auto planar = build_model(spec, 1), last = build_model(spec, 1);
    planar->allow_channels_last(false);
    planar->finalize(planar->item_shape());
    EXPECT_FALSE(planar->channels_last());
    EXPECT_TRUE(last->channels_last());
    Rng rng(33);
    init_params(*last, InitKind::kaiming_uniform, spec.activation, rng);
    std::copy_n(last->values(), last->num_values(), planar->values());

    const int64_t n = 9;
    const Shape xs = Shape::batched(n, last->item_shape());
    const std::vector<float> x = normal(xs.numel(), rng);
    std::vector<int32_t> labels(n);
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
    std::vector<std::vector<float>> logits, dx, grads;
    for (Sequential* m : {planar.get(), last.get()}) {
      ConstView z = m->forward(ConstView(x.data(), xs), Mode::train);
      logits.push_back(copy(z.data, z.numel()));
      std::vector<float> dz(z.numel()), d(x.size());
      softmax_cross_entropy(z, labels.data(), View{dz.data(), z.shape});
      m->backward(ConstView(dz.data(), z.shape), View{d.data(), xs});
      dx.push_back(d);
      grads.push_back(copy(m->grads(), static_cast<int64_t>(m->num_values())));
    }
    expect_close_scaled(logits[1], logits[0], 1e-5f, "logits");
    expect_close_scaled(dx[1], dx[0], 1e-4f, "input gradient");
    for (size_t j = 0; j < last->params().size(); ++j) {
      const int64_t off = last->params()[j]->value - last->values(), len = last->params()[j]->numel();
      // A conv bias in front of batch norm has a true gradient of 0: only rounding is left there.
      if (cs.batchnorm && last->param_names()[j].back() == 's' && last->params()[j]->shape.rank() == 1 &&
          j + 1 < last->params().size() && last->params()[j + 1]->role == ParamRole::bn_scale)
        continue;
      expect_close_scaled(std::vector<float>(grads[1].begin() + off, grads[1].begin() + off + len),
                          std::vector<float>(grads[0].begin() + off, grads[0].begin() + off + len), 1e-4f,
                          "gradient of " + last->param_names()[j]);
    }
  }
}

// An FCN has no convolution blocks: nothing runs channels last.
TEST(ChannelsLast, NotUsedWithoutConvolutions) {
  auto fcn = build_model(default_spec(Family::fcn), 1);
  EXPECT_FALSE(fcn->channels_last());
}

}  // namespace
}  // namespace tailor
