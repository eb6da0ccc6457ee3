// House rule 1: every fast kernel (oneDNN gemm and convolution) matches its naive reference
// in kernels::ref over a grid of shapes, odd sizes and size 1 included.
//
// Tolerances are relative to the size of the sum each output is made of, not to the output
// itself: the fast kernels accumulate in float, the references in double, so the difference is
// bounded by a few float epsilons times sum |term| (cancellation can make the result tiny while
// the rounding error stays the size of the terms).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/pool.hpp"
#include "kernels/ref.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_vector(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::abs(v[i]);
  return a;
}

// Checks |fast[i] - ref[i]| <= rel * magnitude[i] + abs for every i and reports the first few
// offenders (a wrong kernel is usually wrong everywhere: no need for thousands of lines).
void expect_near_ref(const std::vector<float>& fast, const std::vector<float>& ref,
                     const std::vector<float>& magnitude, double rel, double abs,
                     const std::string& what) {
  ASSERT_EQ(fast.size(), ref.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tol = rel * magnitude[i] + abs;
    const double err = std::abs(static_cast<double>(fast[i]) - ref[i]);
    if (!(err <= tol) && ++bad <= 3)  // !(<=) so that a NaN counts as a failure
      ADD_FAILURE() << what << "[" << i << "]: fast " << fast[i] << ", reference " << ref[i]
                    << ", tolerance " << tol;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size() << " elements out of tolerance";
}

// ---------------------------------------------------------------------------------------------
// gemm: C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C, row-major, leading dimensions >= the
// row length. Every trans combination x every (m, n, k) in {1, 2, 7, 17, 64}^3 x three
// (alpha, beta) x tight and padded leading dimensions: 3000 small products, well under a second.

struct GemmCase {
  bool ta, tb;
  int m, n, k;
  float alpha, beta;
  int ld_extra;  // added to every leading dimension
};

std::string describe(const GemmCase& c) {
  return "gemm(ta=" + std::to_string(c.ta) + ", tb=" + std::to_string(c.tb) +
         ", m=" + std::to_string(c.m) + ", n=" + std::to_string(c.n) +
         ", k=" + std::to_string(c.k) + ", alpha=" + std::to_string(c.alpha) +
         ", beta=" + std::to_string(c.beta) + ", ld+" + std::to_string(c.ld_extra) + ")";
}

void check_gemm(const GemmCase& c, Rng& rng) {
  // Stored shapes: A is (M, K), or (K, M) when transposed; B is (K, N), or (N, K) when transposed.
  const int a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k;
  const int b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
  const int lda = a_cols + c.ld_extra, ldb = b_cols + c.ld_extra, ldc = c.n + c.ld_extra;
  const std::vector<float> a = random_vector(static_cast<size_t>(a_rows) * lda, rng);
  const std::vector<float> b = random_vector(static_cast<size_t>(b_rows) * ldb, rng);
  std::vector<float> c0 = random_vector(static_cast<size_t>(c.m) * ldc, rng);
  // With beta = 0 BLAS must not read C at all: NaN there has to disappear, not propagate.
  // The padding past column n of each row must never be written.
  constexpr float kPadding = 12345.0f;
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < ldc; ++j) {
      float& v = c0[static_cast<size_t>(i) * ldc + j];
      if (j >= c.n) v = kPadding;
      else if (c.beta == 0.0f) v = kNaN;
    }

  std::vector<float> fast = c0, ref = c0;
  kernels::gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta,
                fast.data(), ldc);
  kernels::ref::gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta,
                     ref.data(), ldc);

  // magnitude (M, N) = |alpha| sum_p |op(A)[i][p]| |op(B)[p][j]| + |beta| |C0[i][j]|
  std::vector<float> magnitude(ref.size(), 0.0f);
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < c.n; ++j) {
      double s = 0;
      for (int p = 0; p < c.k; ++p) {
        const float av = c.ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
        const float bv = c.tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
        s += std::abs(static_cast<double>(av) * bv);
      }
      const size_t o = static_cast<size_t>(i) * ldc + j;
      magnitude[o] = static_cast<float>(std::abs(c.alpha) * s +
                                        (c.beta == 0.0f ? 0.0 : std::abs(c.beta * c0[o])));
    }

  const std::string what = describe(c);
  expect_near_ref(fast, ref, magnitude, 1e-5, 1e-6, what);
  for (int i = 0; i < c.m; ++i)
    for (int j = c.n; j < ldc; ++j)
      ASSERT_EQ(fast[size_t(i) * ldc + j], kPadding) << what << ": wrote past column n";
}

TEST(Gemm, MatchesReferenceOverShapeGrid) {
  const int sizes[] = {1, 2, 7, 17, 64};
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {1.0f, -2.0f}};
  Rng rng(1);
  int cases = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int m : sizes)
        for (int n : sizes)
          for (int k : sizes)
            for (const auto& ab : alpha_beta)
              for (int ld_extra : {0, 3}) {
                check_gemm({ta, tb, m, n, k, ab[0], ab[1], ld_extra}, rng);
                if (HasFatalFailure()) return;
                ++cases;
              }
  EXPECT_EQ(cases, 4 * 125 * 3 * 2);
}

// ---------------------------------------------------------------------------------------------
// Conv2dKernel: forward, backward_data and backward_weights against kernels::ref.
//   x (N, Cin, H, W), weight (Cout, Cin, K, K), bias (Cout), y (N, Cout, Ho, Wo)

struct ConvBuffers {
  std::vector<float> x, w, b, dy;
};

std::string describe(const kernels::Conv2dShape& s) {
  return "conv(n=" + std::to_string(s.n) + ", cin=" + std::to_string(s.cin) + ", " +
         std::to_string(s.h) + "x" + std::to_string(s.w) + ", cout=" + std::to_string(s.cout) +
         ", k=" + std::to_string(s.k) + ", pad=" + std::to_string(s.pad) + ")";
}

size_t x_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cin * s.h * s.w; }
size_t w_size(const kernels::Conv2dShape& s) { return size_t(s.cout) * s.cin * s.k * s.k; }
size_t y_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cout * s.ho() * s.wo(); }

ConvBuffers random_conv_inputs(const kernels::Conv2dShape& s, Rng& rng) {
  return {random_vector(x_size(s), rng), random_vector(w_size(s), rng),
          random_vector(static_cast<size_t>(s.cout), rng), random_vector(y_size(s), rng)};
}

// (N, C, H, W) <-> (N, H, W, C) for the channels-last kernels, written out here independently of
// kernels::nchw_to_nhwc (which ChannelsLastTransposes checks against these).
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

// With s.channels_last the kernel gets x and dy as (N, H, W, C) and its y and dx are turned
// back into (N, C, H, W) before the comparison with the planar reference; with planar_input too,
// x and dx stay (N, C, H, W).
void check_conv(const kernels::Conv2dShape& s, Rng& rng) {
  const std::string what = describe(s) + (s.channels_last ? " channels last" : "") +
                           (s.planar_input ? " planar input" : "") + (s.bf16 ? " bf16" : "");
  // bf16 operands carry 8 significant bits: each product is off by up to 2^-8 of its size.
  const double rel = s.bf16 ? 8e-3 : 1e-5;
  SCOPED_TRACE(what);
  const ConvBuffers in = random_conv_inputs(s, rng);
  kernels::Conv2dKernel kernel(s);
  const bool cl = s.channels_last, x_cl = cl && !s.planar_input;
  const std::vector<float> x_in = x_cl ? to_nhwc(in.x, s.n, s.cin, s.h, s.w) : in.x;
  const std::vector<float> dy_in = cl ? to_nhwc(in.dy, s.n, s.cout, s.ho(), s.wo()) : in.dy;

  // Outputs start as NaN: every kernel must overwrite all of its output.
  std::vector<float> y(y_size(s), kNaN), y_ref(y_size(s));
  kernel.forward(x_in.data(), in.w.data(), in.b.data(), y.data());
  if (cl) y = to_nchw(y, s.n, s.cout, s.ho(), s.wo());
  kernels::ref::conv2d_forward(s, in.x.data(), in.w.data(), in.b.data(), y_ref.data());
  // magnitude of y = |bias| + sum |x| |w| over the receptive field (the reference run on |.|)
  std::vector<float> y_mag(y_size(s));
  const std::vector<float> abs_x = abs_of(in.x), abs_w = abs_of(in.w), abs_b = abs_of(in.b);
  const std::vector<float> abs_dy = abs_of(in.dy);
  kernels::ref::conv2d_forward(s, abs_x.data(), abs_w.data(), abs_b.data(), y_mag.data());
  expect_near_ref(y, y_ref, y_mag, rel, 1e-6, "forward y");

  // The order a layer calls them in (see Conv2dKernel): weights first, then data.
  // dweight sums N * Ho * Wo products (50k for a 64-batch of 28x28); oneDNN sums in blocks, so
  // the same relative bound holds (worst seen: 3% of it).
  std::vector<float> dw(w_size(s), kNaN), dw_ref(w_size(s)), dw_mag(w_size(s));
  std::vector<float> db(s.cout, kNaN), db_ref(s.cout), db_mag(s.cout);
  kernel.backward_weights(x_in.data(), dy_in.data(), dw.data(), db.data());
  kernels::ref::conv2d_backward_weights(s, in.x.data(), in.dy.data(), dw_ref.data(), db_ref.data());
  kernels::ref::conv2d_backward_weights(s, abs_x.data(), abs_dy.data(), dw_mag.data(),
                                        db_mag.data());
  expect_near_ref(dw, dw_ref, dw_mag, rel, 1e-6, "backward_weights dweight");
  expect_near_ref(db, db_ref, db_mag, rel, 1e-6, "backward_weights dbias");  // from the bf16 dy

  std::vector<float> dx(x_size(s), kNaN), dx_ref(x_size(s)), dx_mag(x_size(s));
  kernel.backward_data(dy_in.data(), in.w.data(), dx.data());
  if (x_cl) dx = to_nchw(dx, s.n, s.cin, s.h, s.w);
  kernels::ref::conv2d_backward_data(s, in.dy.data(), in.w.data(), dx_ref.data());
  kernels::ref::conv2d_backward_data(s, abs_dy.data(), abs_w.data(), dx_mag.data());
  expect_near_ref(dx, dx_ref, dx_mag, rel, 1e-6, "backward_data dx");

}

// The full product n {1, 3, 64} x cin {1, 3, 16} x cout {1, 5, 32} x (H, W) {1x1, 5x7, 14x14,
// 28x28} x k {1, 3, 5} x pad {0, 1, 2} has ~900 non-empty cases and would take minutes with the
// double-precision reference. Every geometry (H, W, k, pad) with a non-empty output is run with
// two (n, cin, cout) triples taken in turn from the 27 (66 cases, plus 4 edge cases listed at
// the end); triples whose reference would cost more than kMaxMacs multiply-adds are skipped in
// favour of the next one, and GridCoversEveryAxisValue checks that no axis value is lost that way.
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

TEST(Conv2dKernel, GridCoversEveryAxisValue) {
  // The sampling above must not silently drop a value of any axis (e.g. after a cost cap change).
  std::set<int> n, cin, cout, h, k, pad;
  for (const auto& s : conv_grid()) {
    n.insert(s.n);
    cin.insert(s.cin);
    cout.insert(s.cout);
    h.insert(s.h);
    k.insert(s.k);
    pad.insert(s.pad);
  }
  auto covers = [](const std::set<int>& got, const std::set<int>& want) {
    return std::includes(got.begin(), got.end(), want.begin(), want.end());
  };
  EXPECT_TRUE(covers(n, {1, 3, 64}));
  EXPECT_TRUE(covers(cin, {1, 3, 16}));
  EXPECT_TRUE(covers(cout, {1, 5, 32}));
  EXPECT_TRUE(covers(h, {1, 5, 14, 28}));
  EXPECT_TRUE(covers(k, {1, 3, 5}));
  EXPECT_TRUE(covers(pad, {0, 1, 2}));
}

TEST(Conv2dKernel, MatchesReferenceOverShapeGrid) {
  kernels::set_threads(2);
  Rng rng(2);
  for (const auto& s : conv_grid()) {
    check_conv(s, rng);
    if (HasFailure()) return;  // one broken shape tells the story; stop before the log floods
  }
}

// ---------------------------------------------------------------------------------------------
// LinearKernel: y = x W^T + b, dW = dy^T x, db = column sums of dy, dx = dy W against ref::gemm
// (double accumulation), sizes 1, odd and the FCN's own; bf16 products where the CPU has them,
// within bfloat16's rounding (8 significant bits per operand: 2^-8 of the sum of |terms|).

void check_linear(const kernels::LinearShape& s, Rng& rng) {
  SCOPED_TRACE(::testing::Message() << "linear n=" << s.n << " in=" << s.in << " out=" << s.out
                                    << (s.bf16 ? " bf16" : ""));
  const std::vector<float> x = random_vector(size_t(s.n) * s.in, rng), w = random_vector(size_t(s.out) * s.in, rng);
  const std::vector<float> b = random_vector(size_t(s.out), rng), dy = random_vector(size_t(s.n) * s.out, rng);
  const std::vector<float> ax = abs_of(x), aw = abs_of(w), ab = abs_of(b), ady = abs_of(dy);
  const double rel = s.bf16 ? 8e-3 : 1e-5;
  kernels::LinearKernel k(s);

  std::vector<float> y(size_t(s.n) * s.out, kNaN), y_ref(y.size()), y_mag(y.size());
  k.forward(x.data(), w.data(), b.data(), y.data());
  for (int i = 0; i < s.n; ++i)
    for (int o = 0; o < s.out; ++o) y_ref[size_t(i) * s.out + o] = b[o], y_mag[size_t(i) * s.out + o] = ab[o];
  kernels::ref::gemm(false, true, s.n, s.out, s.in, 1.0f, x.data(), s.in, w.data(), s.in, 1.0f, y_ref.data(), s.out);
  kernels::ref::gemm(false, true, s.n, s.out, s.in, 1.0f, ax.data(), s.in, aw.data(), s.in, 1.0f, y_mag.data(), s.out);
  expect_near_ref(y, y_ref, y_mag, rel, 1e-6, "forward y");

  std::vector<float> dw(w.size(), kNaN), dw_ref(w.size()), dw_mag(w.size()), db(b.size(), kNaN);
  k.backward_weights(x.data(), dy.data(), dw.data(), db.data());
  kernels::ref::gemm(true, false, s.out, s.in, s.n, 1.0f, dy.data(), s.out, x.data(), s.in, 0.0f, dw_ref.data(), s.in);
  kernels::ref::gemm(true, false, s.out, s.in, s.n, 1.0f, ady.data(), s.out, ax.data(), s.in, 0.0f, dw_mag.data(), s.in);
  expect_near_ref(dw, dw_ref, dw_mag, rel, 1e-6, "dweight");
  std::vector<float> db_ref(b.size(), 0.0f), db_mag(b.size(), 0.0f);
  for (int i = 0; i < s.n; ++i)
    for (int o = 0; o < s.out; ++o) db_ref[o] += dy[size_t(i) * s.out + o], db_mag[o] += ady[size_t(i) * s.out + o];
  expect_near_ref(db, db_ref, db_mag, 1e-5, 1e-6, "dbias");  // float sums in either precision

  std::vector<float> dx(x.size(), kNaN), dx_ref(x.size()), dx_mag(x.size());
  k.backward_data(dy.data(), w.data(), dx.data());
  kernels::ref::gemm(false, false, s.n, s.in, s.out, 1.0f, dy.data(), s.out, w.data(), s.in, 0.0f, dx_ref.data(), s.in);
  kernels::ref::gemm(false, false, s.n, s.in, s.out, 1.0f, ady.data(), s.out, aw.data(), s.in, 0.0f, dx_mag.data(), s.in);
  expect_near_ref(dx, dx_ref, dx_mag, rel, 1e-6, "dx");
}

TEST(LinearKernel, MatchesReferenceOverShapeGrid) {
  kernels::set_threads(2);
  Rng rng(4);
  std::vector<bool> precisions{false};
  if (kernels::has_bf16()) precisions.push_back(true);
  for (bool bf16 : precisions)
    for (int n : {1, 3, 64})
      for (int in : {1, 7, 117, 784})
        for (int out : {1, 10, 59, 117}) {
          check_linear({n, in, out, bf16}, rng);
          if (HasFailure()) return;
        }
}

// float -> bfloat16: round to nearest, ties to even, NaN kept NaN, infinities and signed zeros
// kept; the vector loop (long arrays) and the scalar tail agree with the bit formula.
TEST(ToBf16, RoundsToNearestEven) {
  auto bits = [](uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; };
  const std::pair<uint32_t, uint16_t> cases[] = {
      {0x3f800000u, 0x3f80},  // 1.0
      {0x3f808000u, 0x3f80},  // halfway, even below: down
      {0x3f818000u, 0x3f82},  // halfway, odd below: up
      {0x3f808001u, 0x3f81},  // above halfway: up
      {0x3f807fffu, 0x3f80},  // below halfway: down
      {0x7f800000u, 0x7f80},  // +inf
      {0xff800000u, 0xff80},  // -inf
      {0x80000000u, 0x8000},  // -0
      {0x7f7fffffu, 0x7f80},  // the largest float rounds up to inf
  };
  std::vector<float> x;
  std::vector<uint16_t> want;
  for (int rep = 0; rep < 8; ++rep)  // 72 values: the vector loop and the tail both see every case
    for (const auto& [in, out] : cases) x.push_back(bits(in)), want.push_back(out);
  x.push_back(bits(0x7fc00001u));  // a NaN
  std::vector<uint16_t> y(x.size());
  kernels::to_bf16(x.data(), y.data(), x.size());
  for (size_t i = 0; i + 1 < x.size(); ++i) EXPECT_EQ(y[i], want[i]) << i;
  EXPECT_EQ(y.back() & 0x7f80, 0x7f80);
  EXPECT_NE(y.back() & 0x7f, 0) << "NaN stays NaN";
}

// Repeated calls give the same bits at a fixed thread count.
TEST(LinearKernel, RepeatedCallsAreBitIdentical) {
  kernels::set_threads(2);
  Rng rng(5);
  const kernels::LinearShape s{64, 784, 117, false};
  const std::vector<float> x = random_vector(64 * 784, rng), w = random_vector(117 * 784, rng);
  const std::vector<float> b = random_vector(117, rng), dy = random_vector(64 * 117, rng);
  std::vector<std::vector<float>> outs;
  for (int rep = 0; rep < 2; ++rep) {
    kernels::LinearKernel k(s);
    std::vector<float> y(64 * 117), dw(w.size()), db(b.size()), dx(x.size());
    for (int call = 0; call < 2; ++call) {
      k.forward(x.data(), w.data(), b.data(), y.data());
      k.backward_weights(x.data(), dy.data(), dw.data(), db.data());
      k.backward_data(dy.data(), w.data(), dx.data());
      std::vector<float> all = y;
      for (const auto* v : {&dw, &db, &dx}) all.insert(all.end(), v->begin(), v->end());
      outs.push_back(all);
    }
  }
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[i].data(), outs[0].size() * 4));
}

// The same grid with activations channels last (nhwc at the seam; for a single input channel
// oneDNN's blocked output is taken as it is, since its bytes are nhwc's).
TEST(Conv2dKernel, ChannelsLastMatchesReferenceOverShapeGrid) {
  kernels::set_threads(2);
  Rng rng(3);
  for (auto s : conv_grid()) {
    s.channels_last = true;
    check_conv(s, rng);
    if (HasFailure()) return;
  }
}

// A colour model's first convolution: input (and its gradient) planar, output channels last.
TEST(Conv2dKernel, PlanarInputChannelsLastOutputMatchesReference) {
  kernels::set_threads(2);
  Rng rng(4);
  for (auto s : conv_grid()) {
    s.channels_last = true;
    s.planar_input = true;
    check_conv(s, rng);
    if (HasFailure()) return;
  }
}

// A CNN's convolutions never fall to oneDNN's reference kernel ("ref:any"), which a planar input
// with a channels-last output of 8 channels once got: 60 times slower.
TEST(Conv2dKernel, CnnShapesGetAFastKernel) {
  kernels::set_threads(2);
  for (int cin : {1, 3, 8, 16})
    for (int cout : {4, 8, 12, 16, 32})
      for (bool planar_input : {false, true}) {
        kernels::Conv2dShape s;
        s.n = 64, s.cin = cin, s.cout = cout, s.h = s.w = 20, s.k = 3, s.pad = 1;
        s.channels_last = true;
        s.planar_input = planar_input;
        kernels::Conv2dKernel k(s);
        EXPECT_NE(k.impl_name().rfind("ref", 0), 0u) << describe(s) << (planar_input ? " planar input" : "") << ": "
                                                    << k.impl_name();
      }
}

// bf16 products (where the CPU has them), planar and channels last, on every fourth shape of the
// grid plus the CNN's own.
TEST(Conv2dKernel, Bf16MatchesReferenceWithinItsRounding) {
  if (!kernels::has_bf16()) GTEST_SKIP() << "this CPU has no bf16 dot products";
  kernels::set_threads(2);
  Rng rng(6);
  const auto grid = conv_grid();
  for (size_t i = 0; i < grid.size(); ++i) {
    if (i % 4 != 0 && i + 2 < grid.size()) continue;
    for (bool cl : {false, true}) {
      auto s = grid[i];
      s.bf16 = true;
      s.channels_last = cl;
      check_conv(s, rng);
      if (HasFailure()) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism: at a fixed thread count, repeated calls give bit-identical outputs (no
// order-dependent reductions across threads), so a run is reproduced by its seed and threads.

struct ConvOutputs {
  std::vector<float> y, dx, dw, db;
  bool operator==(const ConvOutputs& o) const {
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    return same(y, o.y) && same(dx, o.dx) && same(dw, o.dw) && same(db, o.db);
  }
};

ConvOutputs run_conv(kernels::Conv2dKernel& kernel, const ConvBuffers& in) {
  const auto& s = kernel.shape();
  ConvOutputs out{std::vector<float>(y_size(s)), std::vector<float>(x_size(s)),
                  std::vector<float>(w_size(s)), std::vector<float>(s.cout)};
  kernel.forward(in.x.data(), in.w.data(), in.b.data(), out.y.data());
  kernel.backward_weights(in.x.data(), in.dy.data(), out.dw.data(), out.db.data());
  kernel.backward_data(in.dy.data(), in.w.data(), out.dx.data());
  return out;
}

TEST(Conv2dKernel, RepeatedCallsAreBitIdenticalAtFixedThreadCount) {
  // The CNN's second conv at batch 64: big enough that oneDNN splits the work over threads.
  const kernels::Conv2dShape s{64, 16, 14, 14, 32, 3, 1};
  Rng rng(3);
  const ConvBuffers in = random_conv_inputs(s, rng);
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    kernels::set_threads(threads);
    ASSERT_EQ(kernels::threads(), threads);
    kernels::Conv2dKernel kernel(s);
    const ConvOutputs first = run_conv(kernel, in);
    for (int repeat = 0; repeat < 3; ++repeat)
      EXPECT_TRUE(run_conv(kernel, in) == first) << "repeat " << repeat << " differs";
    // A second kernel for the same shape (as a fresh process would build) agrees too.
    kernels::Conv2dKernel twin(s);
    EXPECT_TRUE(run_conv(twin, in) == first) << "a second kernel of the same shape differs";
  }
  kernels::set_threads(2);
}

TEST(Conv2dKernel, ReportsItsImplementation) {
  kernels::Conv2dKernel kernel(kernels::Conv2dShape{});
  EXPECT_FALSE(kernel.impl_name().empty());
  RecordProperty("conv_impl", kernel.impl_name());
}

TEST(ChannelsLastTransposes, RoundTripAndMatchTheLoops) {
  Rng rng(26);
  for (const auto& s : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {2, 3, 5, 7}, {64, 32, 7, 7}}) {
    const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
    const std::vector<float> x = random_vector(n * c * h * w, rng);
    std::vector<float> l(x.size(), kNaN), back(x.size(), kNaN);
    kernels::nchw_to_nhwc(x.data(), l.data(), n, c, h, w);
    EXPECT_EQ(l, to_nhwc(x, n, c, h, w));
    kernels::nhwc_to_nchw(l.data(), back.data(), n, c, h, w);
    EXPECT_EQ(back, x);
  }
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// gemm on two threads: correct (against the reference), and the same bits on every call at
// that thread count. (Not necessarily the same bits as one thread: the split differs.)
TEST(GemmThreads, TwoThreadsAreCorrectAndRepeatable) {
  Rng rng(22);
  const int shapes[][3] = {{64, 117, 784}, {117, 784, 64}, {64, 784, 117}, {7, 300, 129}, {300, 5, 64}, {33, 33, 33}};
  for (const auto& s : shapes) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int m = s[0], n = s[1], k = s[2];
        std::vector<float> a(m * k), b(k * n), c1(m * n, 0.5f), c2(m * n, 0.5f), r(m * n, 0.5f);
        for (auto& v : a) v = rng.normal();
        for (auto& v : b) v = rng.normal();
        const int lda = ta ? m : k, ldb = tb ? k : n;
        kernels::set_threads(2);
        kernels::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 1.0f, c1.data(), n);
        kernels::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 1.0f, c2.data(), n);
        kernels::set_threads(1);
        kernels::ref::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 1.0f, r.data(), n);
        EXPECT_EQ(c1, c2) << m << "x" << n << "x" << k << " ta " << ta << " tb " << tb;
        for (size_t i = 0; i < r.size(); ++i) ASSERT_NEAR(c1[i], r[i], 1e-4f * std::sqrt(static_cast<float>(k)) * 4);
      }
  }
}

}  // namespace
}  // namespace tailor
