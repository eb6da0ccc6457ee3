#include "kernels/ref.hpp"

#include <vector>

namespace tailor::kernels::ref {

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int p = 0; p < k; ++p) {
        float av = ta ? a[p * lda + i] : a[i * lda + p];
        float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += static_cast<double>(av) * bv;
      }
      float& out = c[i * ldc + j];
      out = static_cast<float>(alpha * acc + (beta == 0.0f ? 0.0 : beta * out));
    }
}

// y[n][o][i][j] = bias[o] + sum_{c,u,v} x[n][c][i+u-pad][j+v-pad] * w[o][c][u][v]
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  const int ho = s.ho(), wo = s.wo();
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int i = 0; i < ho; ++i)
        for (int j = 0; j < wo; ++j) {
          double acc = bias ? bias[o] : 0.0;
          for (int c = 0; c < s.cin; ++c)
            for (int u = 0; u < s.k; ++u)
              for (int v = 0; v < s.k; ++v) {
                int r = i + u - s.pad, q = j + v - s.pad;
                if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                acc += static_cast<double>(x[((n * s.cin + c) * s.h + r) * s.w + q]) *
                       w[((o * s.cin + c) * s.k + u) * s.k + v];
              }
          y[((n * s.cout + o) * ho + i) * wo + j] = static_cast<float>(acc);
        }
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int ho = s.ho(), wo = s.wo();
  std::vector<double> acc(static_cast<size_t>(s.n) * s.cin * s.h * s.w, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int i = 0; i < ho; ++i)
        for (int j = 0; j < wo; ++j) {
          double g = dy[((n * s.cout + o) * ho + i) * wo + j];
          for (int c = 0; c < s.cin; ++c)
            for (int u = 0; u < s.k; ++u)
              for (int v = 0; v < s.k; ++v) {
                int r = i + u - s.pad, q = j + v - s.pad;
                if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                acc[((n * s.cin + c) * s.h + r) * s.w + q] += g * w[((o * s.cin + c) * s.k + u) * s.k + v];
              }
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db) {
  const int ho = s.ho(), wo = s.wo();
  std::vector<double> accw(static_cast<size_t>(s.cout) * s.cin * s.k * s.k, 0.0);
  std::vector<double> accb(s.cout, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int i = 0; i < ho; ++i)
        for (int j = 0; j < wo; ++j) {
          double g = dy[((n * s.cout + o) * ho + i) * wo + j];
          accb[o] += g;
          for (int c = 0; c < s.cin; ++c)
            for (int u = 0; u < s.k; ++u)
              for (int v = 0; v < s.k; ++v) {
                int r = i + u - s.pad, q = j + v - s.pad;
                if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                accw[((o * s.cin + c) * s.k + u) * s.k + v] += g * x[((n * s.cin + c) * s.h + r) * s.w + q];
              }
        }
  for (size_t i = 0; i < accw.size(); ++i) dw[i] = static_cast<float>(accw[i]);
  if (db)
    for (int o = 0; o < s.cout; ++o) db[o] = static_cast<float>(accb[o]);
}

}  // namespace tailor::kernels::ref
