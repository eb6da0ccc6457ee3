#include "nn/chain.hpp"

#include <algorithm>

namespace tailor {

std::vector<Shape> Chain::shapes(const Shape& in) const {
  std::vector<Shape> out;
  Shape s = in;
  for (const auto& l : layers_) out.push_back(s = l->output_shape(s));
  return out;
}

Shape Chain::output_shape(const Shape& in) const {
  Shape s = in;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

namespace {
// A buffer of at least n floats: grows (once per larger batch), never shrinks.
float* at_least(Buffer& b, int64_t n) {
  if (b.size() < static_cast<size_t>(n)) b.resize(static_cast<size_t>(n));
  return b.data();
}
}  // namespace

ConstView Chain::forward(ConstView x, Mode mode, View out) {
  const size_t n = layers_.size();
  acts_.resize(n);
  grads_.resize(n);
  out_shapes_.resize(n);
  ConstView in = x;
  for (size_t i = 0; i < n; ++i) {
    // Shapes change only with the batch: a cheap recomputation of a cached value.
    if (out_shapes_[i].rank() == 0 || out_shapes_[i][0] != in.shape[0]) out_shapes_[i] = layers_[i]->output_shape(in.shape);
    View y = i + 1 == n && !out.empty() ? View{out.data, out_shapes_[i]}
                                        : View{at_least(acts_[i], out_shapes_[i].numel()), out_shapes_[i]};
    layers_[i]->forward(in, y, mode);
    in = y;
  }
  return in;
}

void Chain::backward(ConstView dy, View dx) {
  if (layers_.empty()) {
    if (!dx.empty()) std::copy_n(dy.data, dy.numel(), dx.data);
    return;
  }
  ConstView d = dy;
  for (size_t i = layers_.size(); i-- > 0;) {
    // Layer i's input gradient: the gradient buffer of layer i - 1's output, or dx.
    View din = i > 0 ? View{at_least(grads_[i - 1], out_shapes_[i - 1].numel()), out_shapes_[i - 1]} : dx;
    layers_[i]->backward(d, din);
    d = din;
  }
}

std::vector<Param*> Chain::params() {
  std::vector<Param*> all;
  for (auto& l : layers_)
    for (Param* p : l->params()) all.push_back(p);
  return all;
}

std::vector<Param*> Chain::buffers() {
  std::vector<Param*> all;
  for (auto& l : layers_)
    for (Param* p : l->buffers()) all.push_back(p);
  return all;
}

}  // namespace tailor
