#include "nn/sequential.hpp"

#include <algorithm>

#include "kernels/pool.hpp"
#include "nn/batchnorm.hpp"
#include "nn/conv2d.hpp"
#include "nn/pool.hpp"
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
  for (size_t i = 0; i < layers_.size(); ++i) {
    s = layers_[i]->output_shape(s);
    for (Param* p : layers_[i]->params()) {
      params_.push_back(p);
      param_names_.push_back(std::to_string(i) + "." + p->name);
      nv += p->numel();
    }
    for (Param* b : layers_[i]->buffers()) {
      buffers_.push_back(b);
      buffer_names_.push_back(std::to_string(i) + "." + b->name);
      ns += b->numel();
    }
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
  for (auto& l : layers_) l->set_channels_last(false);  // planar unless chosen again below
  if (allow_channels_last_ && item_shape.rank() == 3 && item_shape[0] == 1) {
    Shape t = Shape::batched(1, item_shape);
    size_t end = 0;  // layers [0, end) run channels last
    bool conv = false;
    for (size_t i = 0; i < layers_.size(); ++i) {
      conv = conv || dynamic_cast<const Conv2d*>(layers_[i].get()) != nullptr;
      t = layers_[i]->output_shape(t);
      if (t.rank() != 4) {
        end = i + 1;
        break;
      }
    }
    bool ok = conv && end > 0;
    for (size_t i = 0; ok && i < end; ++i) ok = layers_[i]->set_channels_last(true);
    if (!ok)
      for (size_t i = 0; i < end; ++i) layers_[i]->set_channels_last(false);
    channels_last_ = ok;
  }
  acts_.resize(layers_.size());
  act_grads_.resize(layers_.size());
  out_shapes_.resize(layers_.size());
  // The batch norms (with fused relu) that infer runs together with the 2x2 max-pool after them.
  fused_pool_bn_.assign(layers_.size(), nullptr);
  size_t widest = 0;
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    auto* bn = dynamic_cast<BatchNorm*>(layers_[i].get());
    auto* pool = dynamic_cast<const MaxPool2d*>(layers_[i + 1].get());
    if (bn && pool && bn->spatial() && bn->fused_relu() && pool->kernel() == 2) {
      fused_pool_bn_[i] = bn;
      widest = std::max(widest, static_cast<size_t>(bn->channels()));
    }
  }
  fold_scale_.resize(widest);
  fold_shift_.resize(widest);
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

ConstView Sequential::forward(ConstView x, Mode mode) { return run(x, mode, false); }

ConstView Sequential::infer(ConstView x) { return run(x, Mode::eval, true); }

ConstView Sequential::run(ConstView x, Mode mode, bool fuse) {
  const int64_t n = x.shape[0];
  if (x.shape.per_item() != item_shape_.numel())
    throw Error("model input " + x.shape.str() + " does not match item shape " + item_shape_.str());
  reserve(n, false);
  ConstView in(x.data, Shape::batched(n, item_shape_));
  for (size_t i = 0; i < layers_.size(); ++i) {
    // Shapes only change with n, so this is a cheap recomputation of a cached value.
    if (out_shapes_[i].rank() == 0 || out_shapes_[i][0] != n) out_shapes_[i] = layers_[i]->output_shape(in.shape);
    BatchNorm* bn = fused_pool_bn_[i];
    if (bn && (fuse || bn->can_backward_through_pool())) {
      // Batch norm + relu + 2x2 pool in one pass, straight into the pool's output buffer: in
      // infer with the running statistics folded in; otherwise after the statistics, the pool
      // recording its winners for the backward through it.
      const Shape& s = in.shape;  // (N, C, H, W)
      if (out_shapes_[i + 1].rank() == 0 || out_shapes_[i + 1][0] != n)
        out_shapes_[i + 1] = layers_[i + 1]->output_shape(out_shapes_[i]);
      View out{acts_[i + 1].data(), out_shapes_[i + 1]};
      if (!fuse) {
        auto& pool = static_cast<MaxPool2d&>(*layers_[i + 1]);
        bn->forward_through_pool2x2(in, out, pool.winners_for(out.numel()), mode);
      } else {
        bn->eval_affine(fold_scale_.data(), fold_shift_.data());
        if (bn->channels_last())
          kernels::affine_relu_maxpool2x2_nhwc(in.data, fold_scale_.data(), fold_shift_.data(), out.data, s[0], s[2],
                                               s[3], s[1]);
        else
          kernels::affine_relu_maxpool2x2(in.data, fold_scale_.data(), fold_shift_.data(), out.data, s[0], s[1], s[2],
                                          s[3]);
      }
      in = out;
      ++i;
      continue;
    }
    View out{acts_[i].data(), out_shapes_[i]};
    layers_[i]->forward(in, out, mode);
    in = out;
  }
  return in;
}

void Sequential::backward(ConstView dlogits, View dx) {
  const int64_t n = dlogits.shape[0];
  reserve(n, true);
  ConstView dy = dlogits;
  auto grad_into = [&](size_t i) {  // where layer i's input gradient goes
    if (i > 0) return View{act_grads_[i - 1].data(), out_shapes_[i - 1]};
    return dx.empty() ? View{} : View{dx.data, dx.shape};
  };
  for (size_t i = layers_.size(); i-- > 0;) {
    BatchNorm* bn = i > 0 ? fused_pool_bn_[i - 1] : nullptr;
    if (bn && bn->can_backward_through_pool()) {
      // The pool's and the batch norm's backward in one: the pool's full-size input gradient is
      // never written and read back.
      View din = grad_into(i - 1);
      const auto& pool = static_cast<const MaxPool2d&>(*layers_[i]);
      bn->backward_through_pool2x2(dy, acts_[i].data(), pool.winners(), din);
      dy = din;
      --i;
      continue;
    }
    View din = grad_into(i);
    layers_[i]->backward(dy, din);
    dy = din;
  }
}

}  // namespace tailor
