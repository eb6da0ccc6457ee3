#include "nn/block_tail.hpp"

#include "util/error.hpp"

namespace tailor {

BlockTail::BlockTail(int64_t channels, bool batchnorm, ActivationKind activation, kernels::PoolKind pool)
    : c_(channels) {
  // Batch norm and ReLU are one pass (the batch norm's fused relu); another activation after a
  // batch norm, or any without one, is its own part.
  const bool relu = activation == ActivationKind::relu;
  if (batchnorm) {
    auto bn = std::make_unique<BatchNorm>(channels, true, relu);
    bn_ = bn.get();
    parts_.add(std::move(bn));
  }
  if (!batchnorm || !relu) parts_.add(std::make_unique<Activation>(activation));
  auto p = std::make_unique<Pool2d>(pool, 2);
  pool_ = p.get();
  parts_.add(std::move(p));
}

std::string BlockTail::type() const {
  std::string t;
  for (const auto& l : parts_.layers()) {
    if (!t.empty()) t += '+';  // (one append at a time: GCC 12 warns falsely on a + b appended)
    t += l->type();
  }
  return t;
}

nlohmann::json BlockTail::describe() const {
  const bool own_activation = parts_.layers().size() == (bn_ ? 3u : 2u);
  return {{"type", "block_tail"},
          {"channels", c_},
          {"batchnorm", bn_ != nullptr},
          {"activation", own_activation ? parts_.layers()[parts_.layers().size() - 2]->type() : std::string("relu")},
          {"pool", kernels::pool_name(pool_->kind())}};
}

std::vector<nlohmann::json> BlockTail::parts() const {
  std::vector<nlohmann::json> p;
  for (const auto& l : parts_.layers()) p.push_back(l->describe());
  return p;
}

Shape BlockTail::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[1] != c_)
    throw Error(type() + " with " + std::to_string(c_) + " channels cannot take input " + in.str());
  return pool_->output_shape(in);
}

bool BlockTail::supports_channels_last() const {
  for (const auto& l : parts_.layers())
    if (!l->supports_channels_last()) return false;
  return true;
}

void BlockTail::set_channels_last(bool on) {
  for (const auto& l : parts_.layers()) l->set_channels_last(on);
  channels_last_ = on;
}

kernels::TailBackward BlockTail::tail_backward(ConstView dy) const {
  const Shape& s = x_.shape;  // (N, C, H, W), stored (N, H, W, C)
  BatchNormRows& rows = bn_->rows();
  return {pool_->kind(), s[0], s[2], s[3], s[1], x_.data, rows.scale(), rows.shift(), rows.mean(),
          y_.data, winner_.data(), dy.data};
}

void BlockTail::forward(ConstView x, View y, Mode mode) {
  x_ = x;
  y_ = y;
  if (!fused()) {
    parts_.forward(x, mode, y);
    return;
  }
  const int64_t n = x.shape[0], h = x.shape[2], w = x.shape[3];
  BatchNormRows& rows = bn_->rows();
  rows.statistics(x, mode);
  uint8_t* winner = nullptr;
  if (pool_->kind() == kernels::PoolKind::max) {
    if (winner_.size() < static_cast<size_t>(y.numel())) winner_.resize(y.numel());  // grows once
    winner = winner_.data();
  }
  kernels::affine_relu_pool2x2_nhwc(pool_->kind(), x.data, rows.scale(), rows.shift(), y.data, n, h, w, c_, winner);
}

void BlockTail::backward(ConstView dy, View dx) {
  if (!fused()) {
    parts_.backward(dy, dx);
    return;
  }
  const kernels::TailBackward tb = tail_backward(dy);
  BatchNormRows& rows = bn_->rows();
  kernels::affine_relu_pool2x2_backward_sums_nhwc(tb, rows.partials(tb.tasks()));
  const float* k = rows.finish(tb.tasks());
  if (!dx.empty()) kernels::affine_relu_pool2x2_backward_dx_nhwc(tb, k, k + c_, k + 2 * c_, dx.data);
}

}  // namespace tailor
