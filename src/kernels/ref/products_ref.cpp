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

// Output o of group g = o / (cout / groups) reads that group's input channels
// g * cin_g .. (g + 1) * cin_g - 1, cin_g = cin / groups:
//   y[n][o][i][j] = bias[o] + sum_{c < cin_g, u, v} x[n][g cin_g + c][i s + u - pad][j s + v - pad] w[o][c][u][v]
// The backward passes visit the same terms.
namespace {

template <class Term>
void for_each_term(const Conv2dShape& s, Term term) {
  const int ho = s.ho(), wo = s.wo(), cin_g = s.cin / s.groups, cout_g = s.cout / s.groups;
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int i = 0; i < ho; ++i)
        for (int j = 0; j < wo; ++j)
          for (int c = 0; c < cin_g; ++c)
            for (int u = 0; u < s.k; ++u)
              for (int v = 0; v < s.k; ++v) {
                const int r = i * s.stride + u - s.pad, q = j * s.stride + v - s.pad;
                if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                const int ci = (o / cout_g) * cin_g + c;
                term(((static_cast<int64_t>(n) * s.cout + o) * ho + i) * wo + j,
                     ((static_cast<int64_t>(n) * s.cin + ci) * s.h + r) * s.w + q,
                     ((static_cast<int64_t>(o) * cin_g + c) * s.k + u) * s.k + v);
              }
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t outs = static_cast<int64_t>(s.n) * s.cout * s.ho() * s.wo(), plane = static_cast<int64_t>(s.ho()) * s.wo();
  std::vector<double> acc(static_cast<size_t>(outs));
  for (int64_t e = 0; e < outs; ++e) acc[static_cast<size_t>(e)] = bias ? bias[(e / plane) % s.cout] : 0.0;
  for_each_term(s, [&](int64_t yo, int64_t xi, int64_t wi) { acc[static_cast<size_t>(yo)] += static_cast<double>(x[xi]) * w[wi]; });
  for (int64_t e = 0; e < outs; ++e) y[e] = static_cast<float>(acc[static_cast<size_t>(e)]);
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  std::vector<double> acc(static_cast<size_t>(s.n) * s.cin * s.h * s.w, 0.0);
  for_each_term(s, [&](int64_t yo, int64_t xi, int64_t wi) { acc[static_cast<size_t>(xi)] += static_cast<double>(dy[yo]) * w[wi]; });
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  std::vector<double> accw(static_cast<size_t>(s.cout) * (s.cin / s.groups) * s.k * s.k, 0.0), accb(s.cout, 0.0);
  for_each_term(s, [&](int64_t yo, int64_t xi, int64_t wi) { accw[static_cast<size_t>(wi)] += static_cast<double>(dy[yo]) * x[xi]; });
  const int64_t plane = static_cast<int64_t>(s.ho()) * s.wo();
  for (int64_t e = 0; e < static_cast<int64_t>(s.n) * s.cout * plane; ++e) accb[static_cast<size_t>((e / plane) % s.cout)] += dy[e];
  for (size_t i = 0; i < accw.size(); ++i) dw[i] = static_cast<float>(accw[i]);
  if (db)
    for (int o = 0; o < s.cout; ++o) db[o] = static_cast<float>(accb[static_cast<size_t>(o)]);
}

}  // namespace tailor::kernels::ref
