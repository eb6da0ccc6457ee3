#pragma once
#include <memory>
#include <vector>

#include "kernels/pool.hpp"
#include "nn/activation.hpp"
#include "nn/batchnorm.hpp"
#include "nn/chain.hpp"
#include "nn/pool.hpp"

namespace tailor {

// The tail of a CNN block as one layer, x (N, C, H, W) -> y (N, C, H/2, W/2):
//   [batch norm] -> activation -> 2x2 pool (max, avg or l2)
// With batch norm, relu and channels last (how a CNN trains) each direction is one pass through a
// kernel pair of kernels/pool.hpp, the batch norm's arithmetic around it (BatchNormRows): forward
// affine_relu_pool2x2_nhwc after the batch statistics, backward the pool's, the relu's and the
// batch norm's gradients in two passes; the full-size activation between batch norm and pool is
// never written. Otherwise the parts run in turn as a Chain. The parts keep PyTorch's module
// positions (parts()), so the batch norm's parameters keep their names ("1.weight").
class BlockTail final : public Layer {
 public:
  BlockTail(int64_t channels, bool batchnorm, ActivationKind activation, kernels::PoolKind pool);
  std::string type() const override;
  nlohmann::json describe() const override;
  std::vector<nlohmann::json> parts() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(ConstView x, View y, Mode mode) override;
  void backward(ConstView dy, View dx) override;
  std::vector<Param*> params() override { return parts_.params(); }
  std::vector<Param*> buffers() override { return parts_.buffers(); }
  bool supports_channels_last() const override;
  void set_channels_last(bool on) override;
  kernels::PoolKind pool() const { return pool_->kind(); }
  // Whether forward and backward run as the one-pass kernels (batch norm + relu, channels last).
  bool fused() const { return bn_ && bn_->fused_relu() && channels_last_; }

 private:
  kernels::TailBackward tail_backward(ConstView dy) const;

  int64_t c_;
  Chain parts_;                 // [batch norm] -> [activation] -> pool, owned here
  BatchNorm* bn_ = nullptr;     // in parts_; none without batch norm
  Pool2d* pool_ = nullptr;      // in parts_, the last
  std::vector<uint8_t> winner_; // fused max: which input of its window each output came from
  bool channels_last_ = false;
  ConstView x_, y_;
};

}  // namespace tailor
