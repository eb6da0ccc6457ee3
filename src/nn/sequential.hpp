#pragma once
// A stack of layers with all parameters in one flat arena (values and gradients side by side,
// so an optimizer is a single loop) and the activations of every layer kept for backward.
#include <vector>

#include "nn/chain.hpp"
#include "nn/layer.hpp"

namespace tailor {

class Sequential {
 public:
  void add(LayerPtr layer) { chain_.add(std::move(layer)); }
  // Fixes the input item shape (without batch, e.g. (1, 28, 28) or (784)), checks every layer's
  // shape and gives each parameter its slice of the arenas. Parameter names follow PyTorch's
  // nn.Sequential: "<module index>.weight", counting each layer's parts() (a block tail is its
  // batch norm and its pool, so a CNN's second convolution is "3.weight"). May be called again
  // (e.g. after allow_channels_last): the arenas are laid out afresh, so parameters must be set
  // after the last call.
  void finalize(const Shape& item_shape);
  // Whether finalize may run the convolution blocks channels last (the default): the leading
  // layers that keep (N, C, H, W) shapes, when they contain a convolution and every one of them
  // (and the layer after them, a flatten or a global average pool) supports it, store their
  // activations as (N, H, W, C); a colour input stays planar into the first layer. The layout is
  // planned once from what each layer supports, then each layer is told its part. The model's
  // inputs, outputs and parameters are the same either way.
  void allow_channels_last(bool on) { allow_channels_last_ = on; }
  bool channels_last() const { return channels_last_; }
  // Training-mode products in bfloat16 (see Layer::set_bf16_training); needs kernels::has_bf16().
  void set_bf16_training(bool on) {
    for (auto& l : chain_.layers()) l->set_bf16_training(on);
  }

  // x (N, item...) -> logits (N, classes); the view stays valid until the next forward.
  ConstView forward(ConstView x, Mode mode);
  // Evaluation: forward(x, Mode::eval). (A block tail runs its fused pass in both modes.)
  ConstView infer(ConstView x) { return forward(x, Mode::eval); }
  // dlogits (N, classes) -> parameter gradients; dx (N, item...) is written when not empty.
  void backward(ConstView dlogits, View dx = {});

  const std::vector<LayerPtr>& layers() const { return chain_.layers(); }
  // Every layer's random streams, in layer order.
  std::vector<Rng*> random_streams() {
    std::vector<Rng*> all;
    for (auto& l : chain_.layers())
      for (Rng* r : l->random_streams()) all.push_back(r);
    return all;
  }
  const std::vector<Param*>& params() const { return params_; }
  const std::vector<Param*>& buffers() const { return buffers_; }
  const std::vector<std::string>& param_names() const { return param_names_; }
  const std::vector<std::string>& buffer_names() const { return buffer_names_; }
  float* values() { return values_.data(); }
  float* grads() { return grads_.data(); }
  float* buffer_values() { return buffer_values_.data(); }
  size_t num_values() const { return values_.size(); }  // == trainable weight count
  size_t num_buffer_values() const { return buffer_values_.size(); }
  const Shape& item_shape() const { return item_shape_; }
  // Output shapes of every layer for a batch of n.
  std::vector<Shape> shapes(int64_t n) const;
  int64_t forward_flops(int64_t n) const;

 private:
  void plan_layout(const Shape& item_shape);

  Chain chain_;
  Shape item_shape_;
  std::vector<Param*> params_, buffers_;
  std::vector<std::string> param_names_, buffer_names_;
  Buffer values_, grads_, buffer_values_;
  bool allow_channels_last_ = true, channels_last_ = false;
};

}  // namespace tailor
