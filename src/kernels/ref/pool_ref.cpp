#include <algorithm>
#include <vector>

#include "kernels/pool.hpp"

namespace tailor::kernels::ref {

void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const float* a = x + (p * h + 2 * i) * w + 2 * j;
        float m = a[0];
        if (a[1] > m) m = a[1];
        if (a[w] > m) m = a[w];
        if (a[w + 1] > m) m = a[w + 1];
        y[(p * ho + i) * wo + j] = m;
      }
}

void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                         int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  std::fill_n(dx, planes * h * w, 0.0f);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = (p * ho + i) * wo + j;
        const int64_t base = (p * h + 2 * i) * w + 2 * j;
        for (int64_t off : {int64_t{0}, int64_t{1}, w, w + 1})
          if (x[base + off] == y[o]) {
            dx[base + off] = dy[o];
            break;
          }
      }
}

void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t p = 0; p < n * c; ++p) {
    const float a = scale[p % c], b = shift[p % c];
    auto v = [&](int64_t i, int64_t j) { return std::max(x[(p * h + i) * w + j] * a + b, 0.0f); };
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        float m = v(2 * i, 2 * j);
        m = std::max(m, v(2 * i, 2 * j + 1));
        m = std::max(m, v(2 * i + 1, 2 * j));
        m = std::max(m, v(2 * i + 1, 2 * j + 1));
        y[(p * ho + i) * wo + j] = m;
      }
  }
}

namespace {
std::vector<float> planar(const float* x, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<float> p(n * c * h * w);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t z = 0; z < w; ++z)
        for (int64_t k = 0; k < c; ++k) p[((i * c + k) * h + y) * w + z] = x[((i * h + y) * w + z) * c + k];
  return p;
}
void to_channels_last(const std::vector<float>& p, float* x, int64_t n, int64_t h, int64_t w, int64_t c) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t z = 0; z < w; ++z)
        for (int64_t k = 0; k < c; ++k) x[((i * h + y) * w + z) * c + k] = p[((i * c + k) * h + y) * w + z];
}
}  // namespace

void maxpool2x2_forward_nhwc(const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(n * c * (h / 2) * (w / 2));
  maxpool2x2_forward(planar(x, n, h, w, c).data(), out.data(), n * c, h, w);
  to_channels_last(out, y, n, h / 2, w / 2, c);
}

void maxpool2x2_backward_nhwc(const float* x, const float* y, const float* dy, float* dx, int64_t n, int64_t h,
                              int64_t w, int64_t c) {
  std::vector<float> d(n * c * h * w);
  maxpool2x2_backward(planar(x, n, h, w, c).data(), planar(y, n, h / 2, w / 2, c).data(),
                      planar(dy, n, h / 2, w / 2, c).data(), d.data(), n * c, h, w);
  to_channels_last(d, dx, n, h, w, c);
}

void affine_relu_maxpool2x2_nhwc(const float* x, const float* scale, const float* shift, float* y, int64_t n,
                                 int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(n * c * (h / 2) * (w / 2));
  affine_relu_maxpool2x2(planar(x, n, h, w, c).data(), scale, shift, out.data(), n, c, h, w);
  to_channels_last(out, y, n, h / 2, w / 2, c);
}

}  // namespace tailor::kernels::ref
