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
  const auto& layers = chain_.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    s = layers[i]->output_shape(s);
    for (Param* p : layers[i]->params()) {
      params_.push_back(p);
      param_names_.push_back(std::to_string(module) + "." + p->name);
      nv += p->numel();
    }
    for (Param* b : layers[i]->buffers()) {
      buffers_.push_back(b);
      buffer_names_.push_back(std::to_string(module) + "." + b->name);
      ns += b->numel();
    }
    module += layers[i]->parts().size();
  }
  values_.resize(nv);
  grads_.resize(nv);
  buffer_values_.resize(ns);
  size_t off = 0;
  for (Param* p : params_) {
    p->value = values_.data() + off;
    p->grad = grads_.data() + off;
    off += p->numel();
  }
  off = 0;
  for (Param* b : buffers_) {
    b->value = buffer_values_.data() + off;
    off += b->numel();
  }
  // Running variance starts at 1 (PyTorch); parameters are set by init_params. (A residual block's
  // buffers are named "body.1.running_var".)
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (buffers_[i]->name.ends_with("running_var"))
      for (int64_t j = 0; j < buffers_[i]->numel(); ++j) buffers_[i]->value[j] = 1.0f;
  plan_layout(item_shape);
}

// The leading layers whose outputs are (N, C, H, W), and the one after them (a flatten or a
// global average pool, which turns channels last back into PyTorch's order or needs none), run
// channels last when there is a convolution among them and every one supports it; with several
// input channels (colour) the first must also take its input planar. Decided from the layers'
// answers, then each is told once.
void Sequential::plan_layout(const Shape& item_shape) {
  const auto& layers = chain_.layers();
  size_t end = 0;  // layers [0, end) run channels last
  bool conv = false;
  if (allow_channels_last_ && item_shape.rank() == 3 && !layers.empty()) {
    Shape t = Shape::batched(1, item_shape);
    for (size_t i = 0; i < layers.size(); ++i) {
      conv = conv || layers[i]->prefers_channels_last();
      t = layers[i]->output_shape(t);
      if (t.rank() != 4) {
        end = i + 1;
        break;
      }
    }
  }
  bool ok = conv && end > 0 && (item_shape[0] == 1 || layers[0]->supports_planar_input());
  for (size_t i = 0; ok && i < end; ++i) ok = layers[i]->supports_channels_last();
  for (size_t i = 0; i < layers.size(); ++i) layers[i]->set_channels_last(ok && i < end);
  if (!layers.empty() && item_shape.rank() == 3) layers[0]->set_planar_input(ok && item_shape[0] > 1);
  channels_last_ = ok;
}

std::vector<Shape> Sequential::shapes(int64_t n) const { return chain_.shapes(Shape::batched(n, item_shape_)); }

int64_t Sequential::forward_flops(int64_t n) const {
  Shape s = Shape::batched(n, item_shape_);
  int64_t f = 0;
  for (const auto& l : chain_.layers()) {
    f += l->forward_flops(s);
    s = l->output_shape(s);
  }
  return f;
}

ConstView Sequential::forward(ConstView x, Mode mode) {
  const int64_t n = x.shape[0];
  if (x.shape.per_item() != item_shape_.numel())
    throw Error("model input " + x.shape.str() + " does not match item shape " + item_shape_.str());
  return chain_.forward(ConstView(x.data, Shape::batched(n, item_shape_)), mode);
}

void Sequential::backward(ConstView dlogits, View dx) { chain_.backward(dlogits, dx); }

}  // namespace tailor
