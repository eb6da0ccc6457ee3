#include "nn/pool.hpp"

#include <algorithm>
#include <cstdint>

#include "kernels/gap.hpp"
#include "kernels/layout.hpp"
#include "kernels/pool.hpp"
#include "kernels/ref.hpp"
#include "util/error.hpp"
#include "util/names.hpp"

namespace tailor {

namespace {
constexpr NameTable<kernels::PoolKind> kPoolNames[] = {
    {"max", kernels::PoolKind::max}, {"avg", kernels::PoolKind::avg}, {"l2", kernels::PoolKind::l2}};
}  // namespace

kernels::PoolKind parse_pool(const std::string& name) { return parse_name(kPoolNames, name, "pool"); }
std::vector<std::string> pool_names() { return names_of(kPoolNames); }

std::string Pool2d::type() const {
  if (kind_ == kernels::PoolKind::avg) return "avgpool2d";
  if (kind_ == kernels::PoolKind::l2) return "lppool2d";
  return "maxpool2d";
}

nlohmann::json Pool2d::describe() const {
  nlohmann::json d{{"type", type()}, {"kernel", k_}};
  if (kind_ == kernels::PoolKind::l2) d["p"] = 2;
  return d;
}

Shape Pool2d::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[2] < k_ || in[3] < k_)
    throw Error(type() + " with kernel " + std::to_string(k_) + " cannot take input " + in.str());
  return Shape{in[0], in[1], in[2] / k_, in[3] / k_};
}

void Pool2d::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  x_ = x;
  y_ = y;
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
  if (channels_last_) return kernels::pool2x2_forward_nhwc(kind_, x.data, y.data, n, h, w, c);
  if (k_ == 2) return kernels::pool2x2_forward(kind_, x.data, y.data, n * c, h, w);
  kernels::ref::pool_forward(kind_, x.data, y.data, n * c, h, w, k_);
}

void Pool2d::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  const int64_t n = in_shape_[0], c = in_shape_[1], h = in_shape_[2], w = in_shape_[3];
  if (channels_last_) return kernels::pool2x2_backward_nhwc(kind_, x_.data, y_.data, dy.data, dx.data, n, h, w, c);
  if (k_ == 2) return kernels::pool2x2_backward(kind_, x_.data, y_.data, dy.data, dx.data, n * c, h, w);
  kernels::ref::pool_backward(kind_, x_.data, y_.data, dy.data, dx.data, n * c, h, w, k_);
}

void Flatten::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  if (channels_last_ && x.shape.rank() == 4)
    kernels::nhwc_to_nchw(x.data, y.data, x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
  else
    std::copy_n(x.data, x.numel(), y.data);
}

void Flatten::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  if (channels_last_ && in_shape_.rank() == 4)
    kernels::nchw_to_nhwc(dy.data, dx.data, in_shape_[0], in_shape_[1], in_shape_[2], in_shape_[3]);
  else
    std::copy_n(dy.data, dy.numel(), dx.data);
}

Shape GlobalAvgPool::output_shape(const Shape& in) const {
  if (in.rank() != 4) throw Error("global average pooling takes (N, C, H, W), not " + in.str());
  return Shape{in[0], in[1]};
}

void GlobalAvgPool::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  kernels::global_avg_pool(x.data, y.data, x.shape[0], x.shape[1], x.shape[2] * x.shape[3], channels_last_);
}

void GlobalAvgPool::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  kernels::global_avg_pool_backward(dy.data, dx.data, in_shape_[0], in_shape_[1], in_shape_[2] * in_shape_[3],
                                    channels_last_);
}

}  // namespace tailor
