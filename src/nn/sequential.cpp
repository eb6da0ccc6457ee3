#include "nn/sequential.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace tailor {

void Sequential::finalize(const Shape& item_shape) {
  item_shape_ = item_shape;
  Shape s = Shape::batched(1, item_shape);
  size_t nv = 0, ns = 0;
  params_.clear();
  buffers_.clear();
  param_names_.clear();
  buffer_names_.clear();
  size_t module = 0;  // PyTorch's index of the layer's first part
  for (size_t i = 0; i < layers_.size(); ++i) {
    s = layers_[i]->output_shape(s);
    for (Param* p : layers_[i]->params()) {
      params_.push_back(p);
      param_names_.push_back(std::to_string(module) + "." + p->name);
      nv += p->numel();
    }
    for (Param* b : layers_[i]->buffers()) {
      buffers_.push_back(b);
      buffer_names_.push_back(std::to_string(module) + "." + b->name);
      ns += b->numel();
    }
    module += layers_[i]->parts().size();
  }
  values_.resize(nv);
  grads_.resize(nv);
  state_.resize(ns);
  size_t off = 0;
  for (Param* p : params_) {
    p->value = values_.data() + off;
    p->grad = grads_.data() + off;
    off += p->numel();
  }
  off = 0;
  for (Param* b : buffers_) {
    b->value = state_.data() + off;
    off += b->numel();
  }
  // Running variance starts at 1 (PyTorch); parameters are set by init_params.
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (buffers_[i]->name == "running_var")
      for (int64_t j = 0; j < buffers_[i]->numel(); ++j) buffers_[i]->value[j] = 1.0f;
  // Channels last for the leading (N, C, H, W) layers and the layer after them, if all can.
  channels_last_ = false;
  for (auto& l : layers_) l->set_channels_last(false), l->set_planar_input(false);  // planar unless chosen below
  // One input channel is the same bytes in either order; several (colour) need a first layer
  // that takes them planar.
  if (allow_channels_last_ && item_shape.rank() == 3 && !layers_.empty() &&
      (item_shape[0] == 1 || layers_[0]->set_planar_input(true))) {
    Shape t = Shape::batched(1, item_shape);
    size_t end = 0;  // layers [0, end) run channels last
    bool conv = false;
    for (size_t i = 0; i < layers_.size(); ++i) {
      conv = conv || layers_[i]->prefers_channels_last();
      t = layers_[i]->output_shape(t);
      if (t.rank() != 4) {
        end = i + 1;
        break;
      }
    }
    bool ok = conv && end > 0;
    for (size_t i = 0; ok && i < end; ++i) ok = layers_[i]->set_channels_last(true);
    if (!ok) {
      for (size_t i = 0; i < end; ++i) layers_[i]->set_channels_last(false);
      layers_[0]->set_planar_input(false);
    }
    channels_last_ = ok;
  }
  acts_.resize(layers_.size());
  act_grads_.resize(layers_.size());
  out_shapes_.resize(layers_.size());
}

std::vector<Shape> Sequential::shapes(int64_t n) const {
  Shape s = Shape::batched(n, item_shape_);
  std::vector<Shape> out;
  for (const auto& l : layers_) out.push_back(s = l->output_shape(s));
  return out;
}

int64_t Sequential::forward_flops(int64_t n) const {
  Shape s = Shape::batched(n, item_shape_);
  int64_t f = 0;
  for (const auto& l : layers_) {
    f += l->forward_flops(s);
    s = l->output_shape(s);
  }
  return f;
}

// Buffers grow to the largest batch seen and are then reused: a training step after the first
// batch allocates nothing.
void Sequential::reserve(int64_t n, bool with_grads) {
  if (n > capacity_ || (with_grads && n > grad_capacity_)) {
    auto s = shapes(n);
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (n > capacity_) acts_[i].resize(s[i].numel());
      if (with_grads && n > grad_capacity_) act_grads_[i].resize(s[i].numel());
    }
    if (n > capacity_) capacity_ = n;
    if (with_grads && n > grad_capacity_) grad_capacity_ = n;
  }
}

ConstView Sequential::forward(ConstView x, Mode mode) {
  const int64_t n = x.shape[0];
  if (x.shape.per_item() != item_shape_.numel())
    throw Error("model input " + x.shape.str() + " does not match item shape " + item_shape_.str());
  reserve(n, false);
  ConstView in(x.data, Shape::batched(n, item_shape_));
  for (size_t i = 0; i < layers_.size(); ++i) {
    // Shapes only change with n, so this is a cheap recomputation of a cached value.
    if (out_shapes_[i].rank() == 0 || out_shapes_[i][0] != n) out_shapes_[i] = layers_[i]->output_shape(in.shape);
    View out{acts_[i].data(), out_shapes_[i]};
    layers_[i]->forward(in, out, mode);
    in = out;
  }
  return in;
}

void Sequential::backward(ConstView dlogits, View dx) {
  reserve(dlogits.shape[0], true);
  ConstView dy = dlogits;
  for (size_t i = layers_.size(); i-- > 0;) {
    // Layer i's input gradient: the previous layer's output gradient buffer, or dx.
    View din = i > 0 ? View{act_grads_[i - 1].data(), out_shapes_[i - 1]} : dx;
    layers_[i]->backward(dy, din);
    dy = din;
  }
}

}  // namespace tailor
