#include "nn/pool.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

#include "util/error.hpp"

namespace tailor {

Shape MaxPool2d::output_shape(const Shape& in) const {
  if (in.rank() != 4 || in[2] < k_ || in[3] < k_)
    throw Error("maxpool2d with kernel " + std::to_string(k_) + " cannot take input " + in.str());
  return Shape{in[0], in[1], in[2] / k_, in[3] / k_};
}

// k = 2, the CNN blocks' case, written as branch-free selects so the compiler vectorises both
// passes. Forward stores only the maxima; backward finds each window's winner again as the first
// of its four inputs equal to the maximum (the first maximum wins, as in PyTorch) and writes every
// input, the gradient or 0, so dx needs no clearing pass.
void MaxPool2d::forward2(ConstView x, View y) {
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i) {
      const float* __restrict r0 = x.data + (p * h + 2 * i) * w;
      const float* __restrict r1 = r0 + w;
      float* __restrict out = y.data + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; ++j) {
        const float top = r0[2 * j + 1] > r0[2 * j] ? r0[2 * j + 1] : r0[2 * j];
        const float bottom = r1[2 * j + 1] > r1[2 * j] ? r1[2 * j + 1] : r1[2 * j];
        out[j] = bottom > top ? bottom : top;
      }
    }
}

void MaxPool2d::backward2(ConstView dy, View dx) {
  const int64_t planes = in_shape_[0] * in_shape_[1], h = in_shape_[2], w = in_shape_[3];
  const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* base = dx.data + p * h * w;
    for (int64_t i = 0; i < ho; ++i) {
      const float* __restrict x0 = x_.data + (p * h + 2 * i) * w;
      const float* __restrict x1 = x0 + w;
      float* __restrict d0 = base + 2 * i * w;
      float* __restrict d1 = d0 + w;
      const float* __restrict m = y_.data + (p * ho + i) * wo;
      const float* __restrict g = dy.data + (p * ho + i) * wo;
      for (int64_t j = 0; j < wo; ++j) {
        // r: the gradient not yet given to an earlier input of the window. Masks on the bits
        // keep this branch-free also in the scalar tail (rows of 7 or 14 are shorter than a
        // vector; compare-and-branch there cost a quarter of a CNN epoch in mispredictions).
        const float mj = m[j];
        uint32_t r = std::bit_cast<uint32_t>(g[j]);
        const uint32_t k0 = 0u - static_cast<uint32_t>(x0[2 * j] == mj);
        const uint32_t k1 = 0u - static_cast<uint32_t>(x0[2 * j + 1] == mj);
        const uint32_t k2 = 0u - static_cast<uint32_t>(x1[2 * j] == mj);
        d0[2 * j] = std::bit_cast<float>(r & k0);
        r &= ~k0;
        d0[2 * j + 1] = std::bit_cast<float>(r & k1);
        r &= ~k1;
        d1[2 * j] = std::bit_cast<float>(r & k2);
        r &= ~k2;
        d1[2 * j + 1] = std::bit_cast<float>(r);
      }
      if (w & 1) d0[w - 1] = d1[w - 1] = 0.0f;
    }
    if (h & 1) std::fill_n(base + (h - 1) * w, w, 0.0f);
  }
}

void MaxPool2d::forward(ConstView x, View y, Mode) {
  in_shape_ = x.shape;
  x_ = x;
  y_ = y;
  if (k_ == 2) return forward2(x, y);
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t ho = h / k_, wo = w / k_;
  if (argmax_.size() < static_cast<size_t>(planes * ho * wo)) argmax_.resize(planes * ho * wo);
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x.data + p * h * w;
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        int64_t best = (i * k_) * w + j * k_;
        float m = xp[best];
        for (int64_t u = 0; u < k_; ++u)
          for (int64_t v = 0; v < k_; ++v) {
            int64_t idx = (i * k_ + u) * w + j * k_ + v;
            if (xp[idx] > m) { m = xp[idx]; best = idx; }
          }
        const int64_t o = (p * ho + i) * wo + j;
        y.data[o] = m;
        argmax_[o] = static_cast<int32_t>(p * h * w + best);
      }
  }
}

void MaxPool2d::backward(ConstView dy, View dx) {
  if (dx.empty()) return;
  if (k_ == 2) return backward2(dy, dx);
  std::fill_n(dx.data, dx.numel(), 0.0f);
  const int64_t n = dy.numel();
  for (int64_t o = 0; o < n; ++o) dx.data[argmax_[o]] += dy.data[o];
}

void Flatten::forward(ConstView x, View y, Mode) { std::copy_n(x.data, x.numel(), y.data); }

void Flatten::backward(ConstView dy, View dx) {
  if (!dx.empty()) std::copy_n(dy.data, dy.numel(), dx.data);
}

}  // namespace tailor
