#pragma once
// The layer contract. A layer maps x (N, ...) to y (N, ...); forward keeps what backward needs
// (views of x and y stay valid until the next forward, the model owns those buffers).
// backward OVERWRITES its parameter gradients (one backward per step, so no zero_grad pass) and
// writes dx unless dx is empty (the first layer never needs it).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/tensor.hpp"
#include "util/rng.hpp"

namespace tailor {

enum class Mode { train, eval };

// What a parameter is, so initialisation and reports can treat it correctly.
enum class ParamRole { weight, bias, bn_scale, bn_shift };

struct Param {
  std::string name;  // PyTorch-style suffix: "weight", "bias"
  Shape shape;
  ParamRole role = ParamRole::weight;
  int64_t fan_in = 1, fan_out = 1;  // for Xavier/Kaiming
  float* value = nullptr;           // views into the model's arenas
  float* grad = nullptr;
  int64_t numel() const { return shape.numel(); }
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string type() const = 0;
  // The layer in the JSON vocabulary shared with the PyTorch scripts, e.g.
  // {"type":"conv2d","in":16,"out":32,"kernel":3,"padding":1}.
  virtual nlohmann::json describe() const { return {{"type", type()}}; }
  // The PyTorch modules this layer stands for, in order, each described as above: one for most
  // layers; a CNN block tail is its batch norm (+relu), activation and pool. Sequential numbers
  // parameters by these positions (a layer's parameters belong to its first part), so merging
  // layers into one renames nothing; summary and the ONNX export walk them.
  virtual std::vector<nlohmann::json> parts() const { return {describe()}; }
  // `in` includes the batch dimension; throws tailor::Error on a shape the layer cannot take.
  virtual Shape output_shape(const Shape& in) const = 0;
  virtual void forward(ConstView x, View y, Mode mode) = 0;
  virtual void backward(ConstView dy, View dx) = 0;
  // Trainable parameters and non-trainable state (batch-norm running statistics).
  virtual std::vector<Param*> params() { return {}; }
  virtual std::vector<Param*> buffers() { return {}; }
  // Multiply-adds times two for one forward pass of a batch of shape `in`.
  virtual int64_t forward_flops(const Shape& in) const { (void)in; return 0; }
  // Channels last: (N, C, H, W) tensors stored in (N, H, W, C) order, the order a CNN's
  // convolution blocks keep end to end. Sequential::finalize plans the layout once from these
  // answers (docs/design.md) and then tells each layer its part: set_channels_last(true) means
  // take the (N, C, H, W) input (and give such an output) in that order. Shapes stay (N, C, H, W).
  virtual bool supports_channels_last() const { return false; }
  virtual void set_channels_last(bool on) { (void)on; }
  // The first layer of a channels-last model whose input has several channels (colour): takes the
  // input in (N, C, H, W) order while giving the output channels last.
  virtual bool supports_planar_input() const { return false; }
  virtual void set_planar_input(bool on) { (void)on; }
  // Whether the layer's fast kernel runs channels last (a convolution's): a model whose leading
  // (N, C, H, W) layers include one keeps them channels last.
  virtual bool prefers_channels_last() const { return false; }
  // Mixed precision: training-mode products in bfloat16 with float accumulation and float master
  // weights (evaluation stays float). Layers without such products ignore it.
  virtual void set_bf16_training(bool on) { (void)on; }
  // The layer's own random streams (dropout's), so a resumed run continues them exactly.
  virtual std::vector<Rng*> random_streams() { return {}; }
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace tailor
