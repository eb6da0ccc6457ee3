// The oracles of kernels/pool.hpp: the definitions written out plainly, any kernel size, no
// vectors, no fusion. The channels-last and fused kernels are checked against these.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ref.hpp"

namespace tailor::kernels::ref {

void pool_forward(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w, int64_t k) {
  const int64_t ho = h / k, wo = w / k;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const float* win = x + (p * h + i * k) * w + j * k;
        float acc = kind == PoolKind::max ? win[0] : 0.0f;
        for (int64_t u = 0; u < k; ++u)
          for (int64_t v = 0; v < k; ++v) {
            const float e = win[u * w + v];
            if (kind == PoolKind::max) acc = e > acc ? e : acc;  // the first maximum stays
            else if (kind == PoolKind::avg) acc += e;
            else acc += e * e;
          }
        float out = acc;
        if (kind == PoolKind::avg) out = acc / static_cast<float>(k * k);
        if (kind == PoolKind::l2) out = std::sqrt(acc);
        y[(p * ho + i) * wo + j] = out;
      }
}

void pool_backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t planes,
                   int64_t h, int64_t w, int64_t k) {
  const int64_t ho = h / k, wo = w / k;
  std::fill_n(dx, planes * h * w, 0.0f);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = (p * ho + i) * wo + j, base = (p * h + i * k) * w + j * k;
        bool done = false;
        for (int64_t u = 0; u < k; ++u)
          for (int64_t v = 0; v < k; ++v) {
            const int64_t at = base + u * w + v;
            if (kind == PoolKind::max) {
              if (!done && x[at] == y[o]) dx[at] = dy[o], done = true;
            } else if (kind == PoolKind::avg) {
              dx[at] = dy[o] / static_cast<float>(k * k);
            } else {
              // d sqrt(s) / dx = x / sqrt(s); a window of zeros gets 0, as PyTorch's LPPool2d.
              dx[at] = y[o] > 0.0f ? x[at] * (dy[o] / y[o]) : 0.0f;
            }
          }
      }
}

void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < h; ++r)
      for (int64_t q = 0; q < w; ++q)
        for (int64_t k = 0; k < c; ++k) y[((i * h + r) * w + q) * c + k] = x[((i * c + k) * h + r) * w + q];
}

void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t r = 0; r < h; ++r)
        for (int64_t q = 0; q < w; ++q) y[((i * c + k) * h + r) * w + q] = x[((i * h + r) * w + q) * c + k];
}

namespace {

std::vector<float> planar(const float* x, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<float> p(n * c * h * w);
  nhwc_to_nchw(x, p.data(), n, c, h, w);
  return p;
}

void to_channels_last(const std::vector<float>& p, float* x, int64_t n, int64_t h, int64_t w, int64_t c) {
  nchw_to_nhwc(p.data(), x, n, c, h, w);
}

// The tail's two unfused steps: t = x * scale + shift (channels last), a = max(t, 0).
std::vector<float> affine_relu(const float* x, const float* scale, const float* shift, int64_t count, int64_t c) {
  std::vector<float> a(count);
  for (int64_t e = 0; e < count; ++e) a[e] = std::max(x[e] * scale[e % c] + shift[e % c], 0.0f);
  return a;
}

// m = dloss/dt at every input of the tail (N, H, W, C): the pool's backward on a = relu(t), then
// relu's: the gradient passes where a > 0.
std::vector<float> tail_m(const TailBackward& b) {
  const int64_t count = b.n * b.h * b.w * b.c;
  const std::vector<float> a = affine_relu(b.x, b.scale, b.shift, count, b.c);
  std::vector<float> m(count);
  ref::pool2x2_backward_nhwc(b.kind, a.data(), b.y, b.dy, m.data(), b.n, b.h, b.w, b.c);
  for (int64_t e = 0; e < count; ++e)
    if (!(a[e] > 0.0f)) m[e] = 0.0f;
  return m;
}

}  // namespace

void pool2x2_forward_nhwc(PoolKind kind, const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(n * c * (h / 2) * (w / 2));
  pool_forward(kind, planar(x, n, h, w, c).data(), out.data(), n * c, h, w, 2);
  to_channels_last(out, y, n, h / 2, w / 2, c);
}

void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c) {
  std::vector<float> d(n * c * h * w);
  pool_backward(kind, planar(x, n, h, w, c).data(), planar(y, n, h / 2, w / 2, c).data(),
                planar(dy, n, h / 2, w / 2, c).data(), d.data(), n * c, h, w, 2);
  to_channels_last(d, dx, n, h, w, c);
}

void affine_relu_pool2x2_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y,
                              int64_t n, int64_t h, int64_t w, int64_t c) {
  const std::vector<float> a = affine_relu(x, scale, shift, n * h * w * c, c);
  ref::pool2x2_forward_nhwc(kind, a.data(), y, n, h, w, c);
}

void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& b, float* part) {
  const std::vector<float> m = tail_m(b);
  const int64_t C = b.c, ho = b.h / 2;
  std::fill_n(part, b.tasks() * 2 * C, 0.0f);
  // Task (n, i) covers input rows 2i and 2i + 1 of image n (a last odd row has m = 0).
  for (int64_t t = 0; t < b.tasks(); ++t) {
    const int64_t img = t / ho, i = t % ho;
    for (int64_t row = 2 * i; row < 2 * i + 2; ++row)
      for (int64_t col = 0; col < b.w; ++col)
        for (int64_t k = 0; k < C; ++k) {
          const int64_t e = ((img * b.h + row) * b.w + col) * C + k;
          part[t * 2 * C + k] += m[e];
          part[t * 2 * C + C + k] += m[e] * (b.x[e] - b.mean[k]);
        }
  }
}

void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& b, const float* k1, const float* k2, const float* k3,
                                          float* dx) {
  const std::vector<float> m = tail_m(b);
  for (size_t e = 0; e < m.size(); ++e) {
    const int64_t k = static_cast<int64_t>(e) % b.c;
    dx[e] = k1[k] * ((m[e] - k2[k]) - (b.x[e] - b.mean[k]) * k3[k]);
  }
}

}  // namespace tailor::kernels::ref
