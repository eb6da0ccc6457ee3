#pragma once
// A chain of layers run in turn, each writing into a buffer of the chain's own: a model's body
// (Sequential), a residual block's branches (Residual), a block tail's parts when they do not run
// fused (BlockTail). The one loop of forward and backward through layers.
#include <utility>
#include <vector>

#include "nn/layer.hpp"

namespace tailor {

class Chain {
 public:
  void add(LayerPtr layer) { layers_.push_back(std::move(layer)); }
  bool empty() const { return layers_.empty(); }
  const std::vector<LayerPtr>& layers() const { return layers_; }
  // The layers, handed over (the chain is empty after).
  std::vector<LayerPtr> release() { return std::exchange(layers_, {}); }

  // The output shape of every layer for input `in`, and the last one's (in itself when empty).
  std::vector<Shape> shapes(const Shape& in) const;
  Shape output_shape(const Shape& in) const;

  // x through every layer; the last writes into `out` when it is given (its shape must be the
  // chain's output shape), else into the chain's buffer. Returns the last output (x when empty).
  // Buffers grow to the largest batch seen: after the first batch a step allocates nothing.
  ConstView forward(ConstView x, Mode mode, View out = {});
  // dy of the last output -> every layer's backward; dx (empty: not needed) gets the first
  // layer's input gradient. An empty chain copies dy into dx.
  void backward(ConstView dy, View dx);

  // Every layer's parameters and buffers, in order.
  std::vector<Param*> params();
  std::vector<Param*> buffers();

 private:
  std::vector<LayerPtr> layers_;
  std::vector<Buffer> acts_, grads_;  // per layer: its output, and the gradient of it
  std::vector<Shape> out_shapes_;     // per layer, for the current batch
};

}  // namespace tailor
