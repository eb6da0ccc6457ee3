// The one kernel harness (house rule 1; kernel_harness.hpp): every kernel of src/kernels/ against
// its reference over its grid of shapes, on the instruction set that TAILOR_ISA chooses. CTest
// runs this binary once per path (baseline, avx2, avx512; tests/CMakeLists.txt); on a CPU that
// cannot run a path, that run's tests are skipped, never turned into a comparison of the
// reference with itself. The report at the end names the path, the kernels checked and those
// skipped. Beside the harness: properties of particular kernels (rounding, determinism, oneDNN's
// choice of implementation), also checked on every path.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernel_harness.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernels.hpp"
#include "kernels/ref.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

using harness::KernelEntry;
using harness::kNaN;
using harness::random_vector;

const std::vector<KernelEntry>& entries() {
  static const std::vector<KernelEntry> all = [] {
    std::vector<KernelEntry> e;
    for (auto part : {harness::block_kernels, harness::product_kernels, harness::elementwise_kernels})
      for (KernelEntry& k : part()) e.push_back(std::move(k));
    return e;
  }();
  return all;
}

std::vector<std::string> ran, skipped;
size_t cases_run = 0;

class Kernel : public ::testing::TestWithParam<size_t> {};

// Every grid point of the entry: bit for bit, or within its bounds; a NaN fails either way.
TEST_P(Kernel, MatchesReferenceOverItsGrid) {
  kernels::set_threads(2);
  const KernelEntry& k = entries()[GetParam()];
  if (k.unavailable) {
    const std::string why = k.unavailable();
    if (!why.empty()) {
      skipped.push_back(k.name + " (" + why + ")");
      GTEST_SKIP() << k.name << ": " << why;
    }
  }
  for (size_t i = 0; i < k.cases.size(); ++i) {
    SCOPED_TRACE(k.name + " " + k.cases[i]);
    const harness::Comparison c = k.run(i);
    ASSERT_EQ(c.fast.size(), c.ref.size());
    ASSERT_TRUE(c.bound.empty() || c.bound.size() == c.ref.size());
    int bad = 0;
    for (size_t j = 0; j < c.ref.size(); ++j) {
      const bool ok = c.bound.empty() ? (c.fast[j] == c.ref[j] || (std::isnan(c.fast[j]) && std::isnan(c.ref[j])))
                                      : std::abs(c.fast[j] - c.ref[j]) <= c.bound[j];
      if (!ok && ++bad <= 3)
        ADD_FAILURE() << "[" << j << "]: fast " << c.fast[j] << ", reference " << c.ref[j]
                      << (c.bound.empty() ? std::string(" (bit for bit)") : ", bound " + std::to_string(c.bound[j]));
    }
    ASSERT_EQ(bad, 0) << bad << " of " << c.ref.size() << " outputs differ";
  }
  cases_run += k.cases.size();
  ran.push_back(k.name);
}

INSTANTIATE_TEST_SUITE_P(Registry, Kernel, ::testing::Range<size_t>(0, entries().size()), [](const auto& info) {
  std::string n = entries()[info.param].name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

TEST(ConvGrid, CoversEveryAxisValue) {
  // The sampling of conv_grid must not silently drop a value of any axis (e.g. after a cost cap change).
  std::set<int> n, cin, cout, h, k, pad;
  for (const auto& s : harness::conv_grid()) {
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

// float -> bfloat16: round to nearest, ties to even, NaN kept NaN, infinities and signed zeros
// kept, denormals to zero: the reference's formula is what the harness holds the kernel to, so
// here the kernel is held to the expected bits themselves.
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
      {0x00000001u, 0x0000},  // a denormal becomes zero (as AVX-512 BF16's instruction does)
      {0x807fffffu, 0x8000},  // of its sign
  };
  std::vector<float> x;
  std::vector<uint16_t> want;
  for (int rep = 0; rep < 8; ++rep)  // every case at every position of a vector
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

struct ConvBuffers {
  std::vector<float> x, w, b, dy;
};

size_t x_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cin * s.h * s.w; }
size_t w_size(const kernels::Conv2dShape& s) { return size_t(s.cout) * s.cin * s.k * s.k; }
size_t y_size(const kernels::Conv2dShape& s) { return size_t(s.n) * s.cout * s.ho() * s.wo(); }

ConvBuffers random_conv_inputs(const kernels::Conv2dShape& s, Rng& rng) {
  return {random_vector(x_size(s), rng), random_vector(w_size(s), rng),
          random_vector(static_cast<size_t>(s.cout), rng), random_vector(y_size(s), rng)};
}

std::string describe(const kernels::Conv2dShape& s) {
  return "conv(n=" + std::to_string(s.n) + ", cin=" + std::to_string(s.cin) + ", " +
         std::to_string(s.h) + "x" + std::to_string(s.w) + ", cout=" + std::to_string(s.cout) +
         ", k=" + std::to_string(s.k) + ", pad=" + std::to_string(s.pad) + ")";
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

// The suite's last word: the path, which kernels were checked and which this CPU could not run.
class Report : public ::testing::Environment {
 public:
  void TearDown() override {
    if (ran.empty() && skipped.empty()) return;
    std::printf("[ kernels ] path %s: %zu kernels checked against their reference over %zu cases:",
                kernels::isa_summary().c_str(), ran.size(), cases_run);
    for (const auto& n : ran) std::printf(" %s", n.c_str());
    std::printf("\n[ kernels ] %zu skipped:", skipped.size());
    for (const auto& n : skipped) std::printf(" %s", n.c_str());
    std::printf("\n");
  }
};

// The path TAILOR_ISA names, chosen before any kernel runs; every test skipped if this CPU cannot
// run it (the environment's SetUp skips the whole run).
class ChosenPath : public ::testing::Environment {
 public:
  explicit ChosenPath(std::string unrunnable) : unrunnable_(std::move(unrunnable)) {}
  void SetUp() override {
    if (!unrunnable_.empty()) GTEST_SKIP() << unrunnable_;
  }

 private:
  std::string unrunnable_;
};

}  // namespace
}  // namespace tailor

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string unrunnable;
  const char* forced = std::getenv("TAILOR_ISA");
  try {
    if (forced && *forced && !tailor::kernels::cpu_runs(tailor::kernels::parse_isa(forced)))
      unrunnable = std::string("this CPU cannot run the ") + forced + " path";
    else
      tailor::kernels::choose_isa(forced);
  } catch (const tailor::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (!unrunnable.empty()) std::printf("[ kernels ] %s: every test skipped\n", unrunnable.c_str());
  ::testing::AddGlobalTestEnvironment(new tailor::ChosenPath(unrunnable));
  ::testing::AddGlobalTestEnvironment(new tailor::Report);
  return RUN_ALL_TESTS();
}
