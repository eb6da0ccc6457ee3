// The oracles of kernels/update.hpp and kernels/elementwise.hpp: the definitions as scalar loops,
// one element at a time, in the order the headers write them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ref.hpp"
#include "util/rng.hpp"

namespace tailor::kernels::ref {

void sgd_update(const SgdRule& r, float* p, const float* grad, float* buf, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) {
    float g = grad[i] + r.weight_decay * p[i];
    if (r.momentum != 0.0f) {
      buf[i] = r.first_step ? g : r.momentum * buf[i] + g;
      g = r.nesterov ? g + r.momentum * buf[i] : buf[i];
    }
    p[i] -= r.lr * g;
  }
}

void adam_update(const AdamRule& r, float* p, const float* grad, float* m, float* v, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) {
    const float g = grad[i] + r.l2 * p[i];
    p[i] *= r.decay;
    m[i] = r.b1 * m[i] + (1.0f - r.b1) * g;
    v[i] = r.b2 * v[i] + (1.0f - r.b2) * g * g;
    p[i] -= r.step_size * m[i] / (std::sqrt(v[i]) * r.inv_sqrt_bc2 + r.eps);
  }
}

void rmsprop_update(const RmspropRule& r, float* p, const float* grad, float* sq, float* buf, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) {
    const float g = grad[i] + r.weight_decay * p[i];
    sq[i] = r.alpha * sq[i] + (1.0f - r.alpha) * g * g;
    const float u = g / (std::sqrt(sq[i]) + r.eps);
    if (r.momentum != 0.0f) {
      buf[i] = r.momentum * buf[i] + u;
      p[i] -= r.lr * buf[i];
    } else {
      p[i] -= r.lr * u;
    }
  }
}

void dropout_mask(uint64_t base, uint64_t threshold, float keep_scale, float* scale, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t top = Rng::mix(base + i) >> 32;
    scale[i] = top >= threshold ? keep_scale : 0.0f;
  }
}

void multiply(const float* x, const float* s, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * s[i];
}

void bytes_to_floats(const uint8_t* x, float scale, float shift, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]) * scale + shift;
}

void column_sums(const float* x, size_t rows, size_t cols, float* out) {
  for (size_t c = 0; c < cols; ++c) {
    float s = 0.0f;
    for (size_t r = 0; r < rows; ++r) s += x[r * cols + c];
    out[c] = s;
  }
}

void to_bf16(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    const uint32_t exponent = u & 0x7f800000u, magnitude = u & 0x7fffffffu;
    if (exponent == 0) {  // zero or denormal: a zero of the same sign
      y[i] = static_cast<uint16_t>((u >> 16) & 0x8000u);
    } else if (magnitude > 0x7f800000u) {  // NaN: quiet
      y[i] = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {  // round to nearest, ties to even
      const uint32_t lsb = (u >> 16) & 1u;
      y[i] = static_cast<uint16_t>((u + 0x7fffu + lsb) >> 16);
    }
  }
}

void add(const float* a, const float* b, float* y, size_t n, bool relu) {
  for (size_t i = 0; i < n; ++i) y[i] = relu ? std::max(a[i] + b[i], 0.0f) : a[i] + b[i];
}

void relu_backward(const float* dy, const float* y, float* dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void accumulate(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = y[i] + x[i];
}

void ema_update(float decay, const float* p, float* ema, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) ema[i] = decay * ema[i] + (1.0f - decay) * p[i];
}

// Planar: each (image, channel) plane summed in order, then divided by its size.
void global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, bool channels_last) {
  std::vector<float> planar;
  if (channels_last) {
    planar.resize(static_cast<size_t>(n * c * hw));
    nhwc_to_nchw(x, planar.data(), n, c, hw, 1);
    x = planar.data();
  }
  for (int64_t p = 0; p < n * c; ++p) {
    float s = 0.0f;
    for (int64_t i = 0; i < hw; ++i) s += x[p * hw + i];
    y[p] = s / static_cast<float>(hw);
  }
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw, bool channels_last) {
  std::vector<float> planar(static_cast<size_t>(n * c * hw));
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < hw; ++i) planar[static_cast<size_t>(p * hw + i)] = dy[p] / static_cast<float>(hw);
  if (channels_last) nchw_to_nhwc(planar.data(), dx, n, c, hw, 1);
  else std::copy(planar.begin(), planar.end(), dx);
}

}  // namespace tailor::kernels::ref
