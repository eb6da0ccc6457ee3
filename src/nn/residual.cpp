#include "nn/residual.hpp"

#include "kernels/elementwise.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// Renames a branch's parameters and buffers "<branch>.<part>.<name>", parts counted as
// Sequential counts them, so a block's names are PyTorch's for its nn.Sequential branches.
void name_branch(Chain& c, const std::string& branch) {
  size_t part = 0;
  for (const auto& l : c.layers()) {
    for (Param* p : l->params()) p->name = branch + "." + std::to_string(part) + "." + p->name;
    for (Param* b : l->buffers()) b->name = branch + "." + std::to_string(part) + "." + b->name;
    part += l->parts().size();
  }
}

nlohmann::json described(const Chain& c) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& l : c.layers())
    for (const auto& p : l->parts()) a.push_back(p);
  return a;
}

float* at_least(Buffer& b, int64_t n) {
  if (b.size() < static_cast<size_t>(n)) b.resize(static_cast<size_t>(n));
  return b.data();
}

}  // namespace

Residual::Residual(Chain body, Chain skip, ActivationKind activation)
    : body_(std::move(body)), skip_(std::move(skip)), act_(activation) {
  if (body_.empty()) throw Error("a residual block needs a body");
  name_branch(body_, "body");
  name_branch(skip_, "skip");
  if (act_ != ActivationKind::relu) other_ = std::make_unique<Activation>(act_);
}

nlohmann::json Residual::describe() const {
  return {{"type", "residual"}, {"body", described(body_)}, {"skip", described(skip_)},
          {"activation", activation_name(act_)}};
}

Shape Residual::output_shape(const Shape& in) const {
  const Shape b = body_.output_shape(in), s = skip_.output_shape(in);
  if (b != s)
    throw Error("a residual block's body gives " + b.str() + " and its skip " + s.str() + " for input " + in.str() +
                ": they cannot be added");
  return b;
}

void Residual::forward(ConstView x, View y, Mode mode) {
  x_ = x;
  y_ = y;
  const ConstView b = body_.forward(x, mode);
  const ConstView s = skip_.empty() ? x : skip_.forward(x, mode);
  const size_t n = static_cast<size_t>(y.numel());
  if (!other_) {
    kernels::add(b.data, s.data, y.data, n, true);
    return;
  }
  View sum{at_least(sum_, y.numel()), y.shape};
  kernels::add(b.data, s.data, sum.data, n, false);
  other_->forward(sum, y, mode);
}

// dz = the activation's gradient at the sum; the body and the skip each take dz, and the input's
// gradient is the sum of theirs (the identity's is dz itself).
void Residual::backward(ConstView dy, View dx) {
  const size_t n = static_cast<size_t>(dy.numel());
  View dz{at_least(dsum_, dy.numel()), dy.shape};
  if (!other_) kernels::relu_backward(dy.data, y_.data, dz.data, n);
  else other_->backward(dy, dz);
  body_.backward(dz, dx);
  if (dx.empty()) {
    if (!skip_.empty()) skip_.backward(dz, {});
    return;
  }
  const size_t nx = static_cast<size_t>(dx.numel());
  if (skip_.empty()) {
    kernels::accumulate(dz.data, dx.data, nx);
    return;
  }
  View dskip{at_least(dskip_, dx.numel()), dx.shape};
  skip_.backward(dz, dskip);
  kernels::accumulate(dskip.data, dx.data, nx);
}

std::vector<Param*> Residual::params() {
  std::vector<Param*> all = body_.params();
  for (Param* p : skip_.params()) all.push_back(p);
  return all;
}

std::vector<Param*> Residual::buffers() {
  std::vector<Param*> all = body_.buffers();
  for (Param* p : skip_.buffers()) all.push_back(p);
  return all;
}

int64_t Residual::forward_flops(const Shape& in) const {
  int64_t f = 0;
  for (const Chain* c : {&body_, &skip_}) {
    Shape s = in;
    for (const auto& l : c->layers()) {
      f += l->forward_flops(s);
      s = l->output_shape(s);
    }
  }
  return f + output_shape(in).numel();  // the sum
}

bool Residual::supports_channels_last() const {
  for (const Chain* c : {&body_, &skip_})
    for (const auto& l : c->layers())
      if (!l->supports_channels_last()) return false;
  return true;
}

void Residual::set_channels_last(bool on) {
  for (Chain* c : {&body_, &skip_})
    for (const auto& l : c->layers()) l->set_channels_last(on);
}

void Residual::set_bf16_training(bool on) {
  for (Chain* c : {&body_, &skip_})
    for (const auto& l : c->layers()) l->set_bf16_training(on);
}

}  // namespace tailor
