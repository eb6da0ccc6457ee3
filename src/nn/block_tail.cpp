#include "nn/block_tail.hpp"

#include "util/error.hpp"

namespace tailor {

BlockTail::BlockTail(int64_t channels, bool batchnorm, ActivationKind activation, kernels::PoolKind pool)
    : c_(channels), pool_(pool, 2) {
  // Batch norm and ReLU are one pass (the batch norm's fused relu); another activation after a
  // batch norm, or any without one, is its own part.
  const bool relu = activation == ActivationKind::relu;
  if (batchnorm) bn_ = std::make_unique<BatchNorm>(channels, true, relu);
  if (!batchnorm || !relu) act_ = std::make_unique<Activation>(activation);
  if (bn_) chain_.push_back(bn_.get());
  if (act_) chain_.push_back(act_.get());
  chain_.push_back(&pool_);
  mid_.resize(chain_.size() - 1);
  dmid_.resize(chain_.size() - 1);
}

std::string BlockTail::type() const {
  std::string t;
  for (const Layer* l : chain_) {
    if (!t.empty()) t += '+';
    t += l->type();
  }
  return t;
}

nlohmann::json BlockTail::describe() const {
  return {{"type", "block_tail"},
          {"channels", c_},
          {"batchnorm", bn_ != nullptr},
          {"activation", act_ ? act_->type() : std::string("relu")},
          {"pool", kernels::pool_name(pool_.kind())}};
}

std::vector<nlohmann::json> BlockTail::parts() const {
  std::vector<nlohmann::json> p;
  for (const Layer* l : chain_) p.push_back(l->describe());
  return p;
}

Shape BlockTail::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[1] != c_)
    throw Error(type() + " with " + std::to_string(c_) + " channels cannot take input " + in.str());
  return pool_.output_shape(in);
}

std::vector<Param*> BlockTail::params() { return bn_ ? bn_->params() : std::vector<Param*>{}; }
std::vector<Param*> BlockTail::buffers() { return bn_ ? bn_->buffers() : std::vector<Param*>{}; }

bool BlockTail::set_channels_last(bool on) {
  bool ok = true;
  for (Layer* l : chain_) ok = l->set_channels_last(on) && ok;
  if (!ok)
    for (Layer* l : chain_) l->set_channels_last(false);
  channels_last_ = ok && on;
  return ok;
}

kernels::TailBackward BlockTail::tail_backward(ConstView dy) const {
  const Shape& s = x_.shape;  // (N, C, H, W), stored (N, H, W, C)
  return {pool_.kind(), s[0], s[2], s[3], s[1], x_.data, bn_->scale(), bn_->shift(), bn_->mean(),
          y_.data, winner_.data(), dy.data};
}

void BlockTail::forward(ConstView x, View y, Mode mode) {
  x_ = x;
  y_ = y;
  const int64_t n = x.shape[0], h = x.shape[2], w = x.shape[3];
  if (fused()) {
    bn_->statistics(x, mode);
    uint8_t* winner = nullptr;
    if (pool_.kind() == kernels::PoolKind::max) {
      if (winner_.size() < static_cast<size_t>(y.numel())) winner_.resize(y.numel());  // grows once
      winner = winner_.data();
    }
    kernels::affine_relu_pool2x2_nhwc(pool_.kind(), x.data, bn_->scale(), bn_->shift(), y.data, n, h, w, c_, winner);
    return;
  }
  ConstView in = x;
  for (size_t i = 0; i + 1 < chain_.size(); ++i) {
    if (mid_[i].size() < static_cast<size_t>(x.numel())) mid_[i].resize(x.numel());  // the largest batch seen
    View out{mid_[i].data(), x.shape};
    chain_[i]->forward(in, out, mode);
    in = out;
  }
  chain_.back()->forward(in, y, mode);
}

void BlockTail::backward(ConstView dy, View dx) {
  if (fused()) {
    const kernels::TailBackward tb = tail_backward(dy);
    kernels::affine_relu_pool2x2_backward_sums_nhwc(tb, bn_->partials(tb.tasks()));
    const float* k = bn_->finish_backward_sums(tb.tasks());
    if (!dx.empty()) kernels::affine_relu_pool2x2_backward_dx_nhwc(tb, k, k + c_, k + 2 * c_, dx.data);
    return;
  }
  ConstView d = dy;
  for (size_t i = chain_.size(); i-- > 0;) {
    View din = dx;
    if (i > 0) {
      if (dmid_[i - 1].size() < static_cast<size_t>(x_.numel())) dmid_[i - 1].resize(x_.numel());
      din = View{dmid_[i - 1].data(), x_.shape};
    }
    chain_[i]->backward(d, din);
    d = din;
  }
}

}  // namespace tailor
