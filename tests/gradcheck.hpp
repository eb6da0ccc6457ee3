#pragma once
// A numeric gradient checker in the manner of Caffe's GradientChecker. For a layer L, an input x
// and a fixed random r shaped like y = L(x),
//   f(x, params) = sum_i L(x)_i r_i,
// so backward(dy = r) must give df/dx and df/dparam. Each input and parameter element is then
// nudged both ways and (f(v + h) - f(v - h)) / 2h compared with the analytic value.
// Callers keep inputs away from kinks (relu at 0, ties in a max-pool window): at a kink the
// central difference averages two slopes and means nothing.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nn/layer.hpp"
#include "util/rng.hpp"

namespace tailor::gradcheck {

struct Tolerance {
  float step = 1e-2f;  // h
  // |analytic - numeric| <= rel * max(|analytic|, |numeric|) + abs
  double rel = 1e-2;
  double abs = 1e-4;
};

inline bool agrees(double analytic, double numeric, const Tolerance& tol) {
  const double scale = std::max(std::abs(analytic), std::abs(numeric));
  return std::abs(analytic - numeric) <= tol.rel * scale + tol.abs;  // false for NaN
}

// Memory for a standalone layer's parameters and buffers (a Sequential would give it arena
// slices). Values are random: weights and biases U(-1, 1), batch-norm scale U(0.5, 1.5) so no
// channel is switched off; running mean 0 and running variance 1, as PyTorch starts them.
class LayerMemory {
 public:
  LayerMemory(Layer& layer, Rng& rng) {
    const auto params = layer.params();
    const auto buffers = layer.buffers();
    values_.resize(params.size());
    grads_.resize(params.size());
    state_.resize(buffers.size());
    for (size_t i = 0; i < params.size(); ++i) {
      Param& p = *params[i];
      values_[i].resize(p.numel());
      grads_[i].resize(p.numel());
      for (float& v : values_[i])
        v = p.role == ParamRole::bn_scale ? rng.uniform(0.5f, 1.5f) : rng.uniform(-1.0f, 1.0f);
      p.value = values_[i].data();
      p.grad = grads_[i].data();
    }
    for (size_t i = 0; i < buffers.size(); ++i) {
      Param& b = *buffers[i];
      state_[i].assign(b.numel(), b.name == "running_var" ? 1.0f : 0.0f);
      b.value = state_[i].data();
    }
  }

 private:
  std::vector<std::vector<float>> values_, grads_, state_;
};

// f = sum_i y_i r_i after one forward pass, accumulated in double.
inline double objective(Layer& layer, const std::vector<float>& x, const Shape& x_shape,
                        std::vector<float>& y, const Shape& y_shape, const std::vector<float>& r,
                        Mode mode, const std::function<void()>& before_forward) {
  if (before_forward) before_forward();
  layer.forward(ConstView(x.data(), x_shape), View{y.data(), y_shape}, mode);
  double f = 0;
  for (size_t i = 0; i < y.size(); ++i) f += static_cast<double>(y[i]) * r[i];
  return f;
}

// Central difference of f with respect to *v; *v is restored afterwards. The step actually taken
// (v + h and v - h rounded to float) is the denominator, not 2h.
inline double numeric_derivative(float* v, float step, const std::function<double()>& f) {
  const float original = *v;
  const float up = original + step, down = original - step;
  *v = up;
  const double f_up = f();
  *v = down;
  const double f_down = f();
  *v = original;
  return (f_up - f_down) / (static_cast<double>(up) - static_cast<double>(down));
}

// Compares analytic and numeric derivatives element by element; reports the first few
// disagreements by name and index. Returns how many disagreed.
inline int compare(const std::string& what, const std::vector<double>& analytic,
                   const std::vector<double>& numeric, const Tolerance& tol) {
  int bad = 0;
  for (size_t i = 0; i < analytic.size(); ++i)
    if (!agrees(analytic[i], numeric[i], tol) && ++bad <= 3)
      ADD_FAILURE() << what << "[" << i << "]: analytic " << analytic[i] << ", numeric "
                    << numeric[i];
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << analytic.size() << " elements disagree";
  return bad;
}

// Checks df/dx and df/dparam for every element of x and of every parameter of `layer`.
// `before_forward` runs before every forward call (a dropout layer re-arms its fixed mask there).
// Also checks the contract of backward: it overwrites parameter gradients (they start as
// garbage) and gives the same parameter gradients when dx is empty (the model's first layer).
inline void check_layer(Layer& layer, const Shape& x_shape, std::vector<float> x, Mode mode,
                        const Tolerance& tol, Rng& rng,
                        const std::function<void()>& before_forward = {}) {
  ASSERT_EQ(static_cast<int64_t>(x.size()), x_shape.numel());
  const Shape y_shape = layer.output_shape(x_shape);
  std::vector<float> y(y_shape.numel()), r(y_shape.numel());
  for (float& v : r) v = rng.uniform(-1.0f, 1.0f);
  const auto params = layer.params();
  constexpr float kGarbage = 777.0f;

  // Analytic: one forward, one backward with dy = r.
  objective(layer, x, x_shape, y, y_shape, r, mode, before_forward);
  for (Param* p : params) std::fill_n(p->grad, p->numel(), kGarbage);
  std::vector<float> dx(x.size(), kGarbage);
  layer.backward(ConstView(r.data(), y_shape), View{dx.data(), x_shape});
  std::vector<std::vector<float>> param_grads;
  for (Param* p : params) param_grads.emplace_back(p->grad, p->grad + p->numel());

  // The same backward without dx must leave identical parameter gradients.
  objective(layer, x, x_shape, y, y_shape, r, mode, before_forward);
  for (Param* p : params) std::fill_n(p->grad, p->numel(), kGarbage);
  layer.backward(ConstView(r.data(), y_shape), View{});
  for (size_t j = 0; j < params.size(); ++j)
    for (int64_t i = 0; i < params[j]->numel(); ++i)
      ASSERT_EQ(params[j]->grad[i], param_grads[j][i])
          << params[j]->name << "[" << i << "] changes when backward gets an empty dx";

  auto f = [&] { return objective(layer, x, x_shape, y, y_shape, r, mode, before_forward); };

  std::vector<double> analytic(dx.begin(), dx.end()), numeric(x.size());
  for (size_t i = 0; i < x.size(); ++i) numeric[i] = numeric_derivative(&x[i], tol.step, f);
  compare(layer.type() + " dx", analytic, numeric, tol);

  for (size_t j = 0; j < params.size(); ++j) {
    Param& p = *params[j];
    analytic.assign(param_grads[j].begin(), param_grads[j].end());
    numeric.resize(p.numel());
    for (int64_t i = 0; i < p.numel(); ++i)
      numeric[i] = numeric_derivative(&p.value[i], tol.step, f);
    compare(layer.type() + " d" + p.name, analytic, numeric, tol);
  }
}

}  // namespace tailor::gradcheck
