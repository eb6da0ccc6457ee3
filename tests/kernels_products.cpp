// The harness's entries for the products behind oneDNN: gemm, the convolution's three passes
// (planar, channels last, a colour model's planar input; bf16 where the CPU has it) and the
// linear layer's three products. The references accumulate in double and the fast kernels in
// float, in blocks of their own: each output may differ by a few float epsilons times the sum of
// the absolute values of its terms (rel 1e-5; bf16 operands carry 8 significant bits: 8e-3).
#include <algorithm>
#include <string>
#include <vector>

#include "kernel_harness.hpp"
#include "kernels/kernels.hpp"
#include "kernels/ref.hpp"

namespace tailor::harness {
namespace {

// gemm: C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C, row-major, leading dimensions >= the
// row length. Every trans combination x every (m, n, k) in {1, 2, 7, 17, 64}^3 x three
// (alpha, beta) x tight and padded leading dimensions: 3000 small products.
struct GemmCase {
  bool ta, tb;
  int m, n, k;
  float alpha, beta;
  int ld_extra;  // added to every leading dimension
};

std::vector<GemmCase> gemm_grid() {
  std::vector<GemmCase> g;
  const int sizes[] = {1, 2, 7, 17, 64};
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {1.0f, -2.0f}};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int m : sizes)
        for (int n : sizes)
          for (int k : sizes)
            for (const auto& ab : alpha_beta)
              for (int ld_extra : {0, 3}) g.push_back({ta, tb, m, n, k, ab[0], ab[1], ld_extra});
  return g;
}

std::string label(const GemmCase& c) {
  return "ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) + " m=" + std::to_string(c.m) +
         " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " ld+" + std::to_string(c.ld_extra);
}

Comparison run_gemm(const GemmCase& c, Rng& rng) {
  // Stored shapes: A is (M, K), or (K, M) when transposed; B is (K, N), or (N, K) when transposed.
  const int a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k;
  const int b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
  const int lda = a_cols + c.ld_extra, ldb = b_cols + c.ld_extra, ldc = c.n + c.ld_extra;
  const std::vector<float> a = random_vector(static_cast<size_t>(a_rows) * lda, rng);
  const std::vector<float> b = random_vector(static_cast<size_t>(b_rows) * ldb, rng);
  std::vector<float> c0 = random_vector(static_cast<size_t>(c.m) * ldc, rng);
  // With beta = 0 gemm must not read C at all: NaN there has to disappear, not propagate. The
  // padding past column n of each row must never be written (its bound is 0).
  constexpr float kPadding = 12345.0f;
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < ldc; ++j) {
      float& v = c0[static_cast<size_t>(i) * ldc + j];
      if (j >= c.n) v = kPadding;
      else if (c.beta == 0.0f) v = kNaN;
    }
  Comparison out{c0, c0, {}};
  kernels::gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta, out.fast.data(), ldc);
  kernels::ref::gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta, out.ref.data(), ldc);
  // magnitude (M, N) = |alpha| sum_p |op(A)[i][p]| |op(B)[p][j]| + |beta| |C0[i][j]|; 0 in the padding.
  std::vector<float> magnitude(out.ref.size(), 0.0f);
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < c.n; ++j) {
      double s = 0;
      for (int p = 0; p < c.k; ++p) {
        const float av = c.ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
        const float bv = c.tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
        s += std::abs(static_cast<double>(av) * bv);
      }
      const size_t o = static_cast<size_t>(i) * ldc + j;
      magnitude[o] = static_cast<float>(std::abs(c.alpha) * s + (c.beta == 0.0f ? 0.0 : std::abs(c.beta * c0[o])));
    }
  out.bound = bounds(magnitude, 1e-5, 1e-6);
  for (int i = 0; i < c.m; ++i)
    for (int j = c.n; j < ldc; ++j) out.bound[static_cast<size_t>(i) * ldc + j] = 0.0f;
  return out;
}

// (N, C, H, W) <-> (N, H, W, C), written out here independently of kernels::nchw_to_nhwc.
std::vector<float> to_nhwc(const std::vector<float>& v, int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) out[((i * h + y) * w + x) * c + k] = v[((i * c + k) * h + y) * w + x];
  return out;
}
std::vector<float> to_nchw(const std::vector<float>& v, int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) out[((i * c + k) * h + y) * w + x] = v[((i * h + y) * w + x) * c + k];
  return out;
}

size_t x_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cin * s.h * s.w; }
size_t w_size(const kernels::Conv2dShape& s) { return size_t(s.cout) * (s.cin / s.groups) * s.k * s.k; }
size_t y_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cout * s.ho() * s.wo(); }

std::string label(const kernels::Conv2dShape& s) {
  return "n=" + std::to_string(s.n) + " cin=" + std::to_string(s.cin) + " " + std::to_string(s.h) + "x" +
         std::to_string(s.w) + " cout=" + std::to_string(s.cout) + " k=" + std::to_string(s.k) +
         " pad=" + std::to_string(s.pad);
}

// y, dweight, dbias and dx, in the order a layer calls the passes (weights, then data). With
// channels_last the kernel gets x and dy as (N, H, W, C) and its y and dx are turned back into
// (N, C, H, W) for the planar reference; with planar_input too, x and dx stay (N, C, H, W).
// dweight sums N * Ho * Wo products; oneDNN sums in blocks, so the same relative bound holds.
Comparison run_conv(const kernels::Conv2dShape& s, Rng& rng) {
  const double rel = s.bf16 ? 8e-3 : 1e-5;
  const std::vector<float> x = random_vector(x_size(s), rng), w = random_vector(w_size(s), rng);
  const std::vector<float> b = random_vector(static_cast<size_t>(s.cout), rng), dy = random_vector(y_size(s), rng);
  const std::vector<float> ax = abs_of(x), aw = abs_of(w), ab = abs_of(b), ady = abs_of(dy);
  kernels::Conv2dKernel kernel(s);
  const bool cl = s.channels_last, x_cl = cl && !s.planar_input;
  const std::vector<float> x_in = x_cl ? to_nhwc(x, s.n, s.cin, s.h, s.w) : x;
  const std::vector<float> dy_in = cl ? to_nhwc(dy, s.n, s.cout, s.ho(), s.wo()) : dy;
  Comparison out;

  std::vector<float> y(y_size(s), kNaN), y_ref(y.size()), y_mag(y.size());
  kernel.forward(x_in.data(), w.data(), b.data(), y.data());
  if (cl) y = to_nchw(y, s.n, s.cout, s.ho(), s.wo());
  kernels::ref::conv2d_forward(s, x.data(), w.data(), b.data(), y_ref.data());
  kernels::ref::conv2d_forward(s, ax.data(), aw.data(), ab.data(), y_mag.data());
  out.append(y, y_ref, bounds(y_mag, rel, 1e-6));

  std::vector<float> dw(w_size(s), kNaN), dw_ref(dw.size()), dw_mag(dw.size());
  std::vector<float> db(s.cout, kNaN), db_ref(db.size()), db_mag(db.size());
  kernel.backward_weights(x_in.data(), dy_in.data(), dw.data(), db.data());
  kernels::ref::conv2d_backward_weights(s, x.data(), dy.data(), dw_ref.data(), db_ref.data());
  kernels::ref::conv2d_backward_weights(s, ax.data(), ady.data(), dw_mag.data(), db_mag.data());
  out.append(dw, dw_ref, bounds(dw_mag, rel, 1e-6));
  out.append(db, db_ref, bounds(db_mag, rel, 1e-6));  // from the bf16 dy

  std::vector<float> dx(x_size(s), kNaN), dx_ref(dx.size()), dx_mag(dx.size());
  kernel.backward_data(dy_in.data(), w.data(), dx.data());
  if (x_cl) dx = to_nchw(dx, s.n, s.cin, s.h, s.w);
  kernels::ref::conv2d_backward_data(s, dy.data(), w.data(), dx_ref.data());
  kernels::ref::conv2d_backward_data(s, ady.data(), aw.data(), dx_mag.data());
  out.append(dx, dx_ref, bounds(dx_mag, rel, 1e-6));
  return out;
}

// y = x W^T + b, dW = dy^T x, db = column sums of dy, dx = dy W against ref::gemm.
Comparison run_linear(const kernels::LinearShape& s, Rng& rng) {
  const std::vector<float> x = random_vector(size_t(s.n) * s.in, rng), w = random_vector(size_t(s.out) * s.in, rng);
  const std::vector<float> b = random_vector(size_t(s.out), rng), dy = random_vector(size_t(s.n) * s.out, rng);
  const std::vector<float> ax = abs_of(x), aw = abs_of(w), ab = abs_of(b), ady = abs_of(dy);
  const double rel = s.bf16 ? 8e-3 : 1e-5;
  kernels::LinearKernel k(s);
  Comparison out;

  std::vector<float> y(size_t(s.n) * s.out, kNaN), y_ref(y.size()), y_mag(y.size());
  k.forward(x.data(), w.data(), b.data(), y.data());
  for (int i = 0; i < s.n; ++i)
    for (int o = 0; o < s.out; ++o) y_ref[size_t(i) * s.out + o] = b[o], y_mag[size_t(i) * s.out + o] = ab[o];
  kernels::ref::gemm(false, true, s.n, s.out, s.in, 1.0f, x.data(), s.in, w.data(), s.in, 1.0f, y_ref.data(), s.out);
  kernels::ref::gemm(false, true, s.n, s.out, s.in, 1.0f, ax.data(), s.in, aw.data(), s.in, 1.0f, y_mag.data(), s.out);
  out.append(y, y_ref, bounds(y_mag, rel, 1e-6));

  std::vector<float> dw(w.size(), kNaN), dw_ref(w.size()), dw_mag(w.size()), db(b.size(), kNaN);
  k.backward_weights(x.data(), dy.data(), dw.data(), db.data());
  kernels::ref::gemm(true, false, s.out, s.in, s.n, 1.0f, dy.data(), s.out, x.data(), s.in, 0.0f, dw_ref.data(), s.in);
  kernels::ref::gemm(true, false, s.out, s.in, s.n, 1.0f, ady.data(), s.out, ax.data(), s.in, 0.0f, dw_mag.data(), s.in);
  out.append(dw, dw_ref, bounds(dw_mag, rel, 1e-6));
  std::vector<float> db_ref(b.size(), 0.0f), db_mag(b.size(), 0.0f);
  for (int i = 0; i < s.n; ++i)
    for (int o = 0; o < s.out; ++o) db_ref[o] += dy[size_t(i) * s.out + o], db_mag[o] += ady[size_t(i) * s.out + o];
  out.append(db, db_ref, bounds(db_mag, 1e-5, 1e-6));  // float sums in either precision

  std::vector<float> dx(x.size(), kNaN), dx_ref(x.size()), dx_mag(x.size());
  k.backward_data(dy.data(), w.data(), dx.data());
  kernels::ref::gemm(false, false, s.n, s.in, s.out, 1.0f, dy.data(), s.out, w.data(), s.in, 0.0f, dx_ref.data(), s.in);
  kernels::ref::gemm(false, false, s.n, s.in, s.out, 1.0f, ady.data(), s.out, aw.data(), s.in, 0.0f, dx_mag.data(), s.in);
  out.append(dx, dx_ref, bounds(dx_mag, rel, 1e-6));
  return out;
}

std::string no_bf16() { return kernels::has_bf16() ? "" : "no bf16 dot products on this path: oneDNN " + kernels::cpu_isa(); }

}  // namespace

// The full product n {1, 3, 64} x cin {1, 3, 16} x cout {1, 5, 32} x (H, W) {1x1, 5x7, 14x14,
// 28x28} x k {1, 3, 5} x pad {0, 1, 2} has ~900 non-empty cases and would take minutes with the
// double-precision reference. Every geometry (H, W, k, pad) with a non-empty output is run with
// two (n, cin, cout) triples taken in turn from the 27 (66 cases, plus 4 edge cases listed at
// the end); triples whose reference would cost more than kMaxMacs multiply-adds are skipped in
// favour of the next one, and ConvGrid.CoversEveryAxisValue checks that no axis value is lost.
std::vector<kernels::Conv2dShape> conv_grid() {
  constexpr double kMaxMacs = 2.5e7;
  const int batches[] = {1, 3, 64}, cins[] = {1, 3, 16}, couts[] = {1, 5, 32};
  const int hws[][2] = {{1, 1}, {5, 7}, {14, 14}, {28, 28}};
  std::vector<kernels::Conv2dShape> grid;
  int next_triple = 0;
  for (const auto& hw : hws)
    for (int k : {1, 3, 5})
      for (int pad : {0, 1, 2}) {
        kernels::Conv2dShape g;
        g.h = hw[0], g.w = hw[1], g.k = k, g.pad = pad;
        if (g.ho() < 1 || g.wo() < 1) continue;
        for (int taken = 0, tried = 0; taken < 2 && tried < 27; ++tried) {
          const int t = next_triple++ % 27;
          kernels::Conv2dShape s = g;
          s.n = batches[t / 9], s.cin = cins[(t / 3) % 3], s.cout = couts[t % 3];
          const double macs = static_cast<double>(y_size(s)) * s.cin * s.k * s.k;
          if (macs > kMaxMacs) continue;
          grid.push_back(s);
          ++taken;
        }
      }
  // All ones; a kernel wider than a 1x1 input (everything but the centre is padding); the CNN's
  // own layer shapes at batch 64 (conv 1->16 on 28x28, 16->32 on 14x14).
  grid.push_back({1, 1, 1, 1, 1, 1, 0});
  grid.push_back({3, 3, 1, 1, 5, 5, 2});
  grid.push_back({64, 1, 28, 28, 16, 3, 1});
  grid.push_back({64, 16, 14, 14, 32, 3, 1});
  return grid;
}

std::vector<KernelEntry> product_kernels() {
  std::vector<KernelEntry> out;
  std::vector<std::string> gemm_labels;
  for (const GemmCase& c : gemm_grid()) gemm_labels.push_back(label(c));
  out.push_back({"gemm", gemm_labels, [](size_t i) {
                   Rng rng(1 + i);
                   return run_gemm(gemm_grid()[i], rng);
                 }});

  // Convolutions: planar; channels last (for a single input channel oneDNN's blocked output is
  // taken as it is, its bytes being nhwc's); a colour model's first layer (input planar, output
  // channels last); bf16 products planar and channels last, on every fourth shape plus the CNN's.
  struct Variant {
    const char* name;
    bool channels_last, planar_input, bf16;
  };
  for (const Variant& v : {Variant{"conv2d", false, false, false}, Variant{"conv2d/channels_last", true, false, false},
                           Variant{"conv2d/planar_input", true, true, false}, Variant{"conv2d/bf16", false, false, true},
                           Variant{"conv2d/bf16/channels_last", true, false, true}}) {
    std::vector<kernels::Conv2dShape> shapes;
    const auto grid = conv_grid();
    for (size_t i = 0; i < grid.size(); ++i) {
      if (v.bf16 && i % 4 != 0 && i + 2 < grid.size()) continue;
      kernels::Conv2dShape s = grid[i];
      s.channels_last = v.channels_last, s.planar_input = v.planar_input, s.bf16 = v.bf16;
      s.threads = 2;
      shapes.push_back(s);
    }
    std::vector<std::string> labels;
    for (const auto& s : shapes) labels.push_back(label(s));
    KernelEntry e{v.name, labels, [shapes](size_t i) {
                    kernels::set_threads(2);
                    Rng rng(100 + i);
                    return run_conv(shapes[i], rng);
                  }};
    if (v.bf16) e.unavailable = no_bf16;
    out.push_back(e);
  }

  // The convolutions of --arch stages: strides 2, groups, depthwise (groups == channels), 5x5,
  // 1x1 projections; planar and channels last; odd sizes, 1x1 maps, channels below and above a
  // vector.
  for (bool cl : {false, true}) {
    std::vector<kernels::Conv2dShape> shapes;
    const int cases[][9] = {{2, 3, 7, 8, 4, 3, 1, 2, 1},   {3, 4, 5, 6, 6, 3, 1, 1, 2},  {2, 4, 5, 6, 4, 3, 1, 1, 4},
                            {2, 16, 9, 9, 16, 3, 1, 2, 16}, {1, 17, 7, 5, 17, 5, 2, 1, 17}, {2, 8, 14, 14, 16, 1, 0, 2, 1},
                            {3, 6, 1, 1, 6, 3, 1, 2, 6},   {2, 32, 7, 7, 32, 3, 1, 1, 32}, {64, 16, 14, 14, 32, 3, 1, 2, 1},
                            {2, 2, 9, 6, 3, 5, 2, 2, 1}};
    for (const auto& c : cases) {
      kernels::Conv2dShape sh;
      sh.n = c[0], sh.cin = c[1], sh.h = c[2], sh.w = c[3], sh.cout = c[4], sh.k = c[5], sh.pad = c[6];
      sh.stride = c[7], sh.groups = c[8], sh.channels_last = cl, sh.threads = 2;
      shapes.push_back(sh);
    }
    std::vector<std::string> labels;
    for (const auto& sh : shapes)
      labels.push_back(label(sh) + " stride=" + std::to_string(sh.stride) + " groups=" + std::to_string(sh.groups));
    out.push_back({cl ? "conv2d/strided_grouped/channels_last" : "conv2d/strided_grouped", labels, [shapes](size_t i) {
                     kernels::set_threads(2);
                     Rng rng(300 + i);
                     return run_conv(shapes[i], rng);
                   }});
  }

  // Linear layers: sizes 1, odd and the FCN's own, fp32 and (where the CPU has it) bf16.
  for (bool bf16 : {false, true}) {
    std::vector<kernels::LinearShape> shapes;
    for (int n : {1, 3, 64})
      for (int in : {1, 7, 117, 784})
        for (int o : {1, 10, 59, 117}) shapes.push_back({n, in, o, bf16, 2});
    std::vector<std::string> labels;
    for (const auto& s : shapes)
      labels.push_back("n=" + std::to_string(s.n) + " in=" + std::to_string(s.in) + " out=" + std::to_string(s.out));
    KernelEntry e{bf16 ? "linear/bf16" : "linear", labels, [shapes](size_t i) {
                    kernels::set_threads(2);
                    Rng rng(200 + i);
                    return run_linear(shapes[i], rng);
                  }};
    if (bf16) e.unavailable = no_bf16;
    out.push_back(e);
  }
  return out;
}

}  // namespace tailor::harness
