// The kernels of one CNN-100k training step, timed one by one (Google Benchmark) on the path that
// TAILOR_ISA chooses (kernels/isa.hpp): the shapes of one data-parallel replica, 32 images on one
// thread, as `tailor train --threads 2` runs them. Which kernels an epoch's time goes to, and how
// each path compares (run it once per path; docs/performance.md).
//   build/bench/kernels_bench [--benchmark_filter=tail]      TAILOR_ISA=avx2 build/bench/kernels_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/batchnorm.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernels.hpp"
#include "kernels/layout.hpp"
#include "kernels/pool.hpp"
#include "kernels/update.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

constexpr int kBatch = 32;

std::vector<float> random(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

// conv 3x3 pad 1 on (32, cin, hw, hw) -> cout, channels last: forward, backward-weights, backward-data.
void conv(benchmark::State& state, int cin, int cout, int hw, int pass, bool channels_last) {
  kernels::set_threads(1);
  kernels::Conv2dShape s;
  s.n = kBatch, s.cin = cin, s.cout = cout, s.h = s.w = hw, s.k = 3, s.pad = 1, s.channels_last = channels_last;
  kernels::Conv2dKernel k(s);
  const auto x = random(size_t(kBatch) * cin * hw * hw, 1), w = random(size_t(cout) * cin * 9, 2), b = random(cout, 3);
  auto y = random(size_t(kBatch) * cout * hw * hw, 4), dx = x, dw = w, db = b;
  k.forward(x.data(), w.data(), b.data(), y.data());
  for (auto _ : state) {
    if (pass == 0) k.forward(x.data(), w.data(), b.data(), y.data());
    if (pass == 1) k.backward_weights(x.data(), y.data(), dw.data(), db.data());
    if (pass == 2) k.backward_data(y.data(), w.data(), dx.data());
  }
  state.SetLabel(k.impl_name());
}

// The block tail on (32, c, hw, hw) channels last: batch-norm statistics (two passes of sums), the
// fused affine + relu + max pool, and the backward's two passes.
void tail(benchmark::State& state, int c, int hw, int part) {
  kernels::set_threads(1);
  const int64_t rows = int64_t(kBatch) * hw * hw, ho = hw / 2;
  const auto x = random(rows * c, 5), scale = random(c, 6), shift = random(c, 7), mean = random(c, 8);
  auto y = random(int64_t(kBatch) * ho * ho * c, 9), dy = y, dx = x;
  std::vector<uint8_t> win(y.size());
  std::vector<float> part_sums(kernels::batchnorm_chunks(rows) * 2 * c + int64_t(kBatch) * ho * 2 * c);
  kernels::affine_relu_pool2x2_nhwc(kernels::PoolKind::max, x.data(), scale.data(), shift.data(), y.data(), kBatch, hw,
                                    hw, c, win.data());
  const kernels::TailBackward tb{kernels::PoolKind::max, kBatch, hw, hw, c, x.data(), scale.data(), shift.data(),
                                 mean.data(), y.data(), win.data(), dy.data()};
  for (auto _ : state) {
    if (part == 0) {
      kernels::batchnorm_rows_sums(x.data(), rows, c, nullptr, part_sums.data());
      kernels::batchnorm_rows_sums(x.data(), rows, c, mean.data(), part_sums.data());
    }
    if (part == 1)
      kernels::affine_relu_pool2x2_nhwc(kernels::PoolKind::max, x.data(), scale.data(), shift.data(), y.data(), kBatch,
                                        hw, hw, c, win.data());
    if (part == 2) kernels::affine_relu_pool2x2_backward_sums_nhwc(tb, part_sums.data());
    if (part == 3) kernels::affine_relu_pool2x2_backward_dx_nhwc(tb, scale.data(), shift.data(), mean.data(), dx.data());
    benchmark::ClobberMemory();
  }
}

void linear(benchmark::State& state, int in, int out, int pass) {
  kernels::set_threads(1);
  kernels::LinearKernel k({kBatch, in, out, false, 1});
  const auto x = random(size_t(kBatch) * in, 1), w = random(size_t(out) * in, 2), b = random(out, 3);
  auto y = random(size_t(kBatch) * out, 4), dw = w, db = b, dx = x;
  for (auto _ : state) {
    if (pass == 0) k.forward(x.data(), w.data(), b.data(), y.data());
    if (pass == 1) k.backward_weights(x.data(), y.data(), dw.data(), db.data());
    if (pass == 2) k.backward_data(y.data(), w.data(), dx.data());
  }
}

void flatten(benchmark::State& state, int to_planar) {
  const auto x = random(size_t(kBatch) * 32 * 7 * 7, 1);
  auto y = x;
  for (auto _ : state) {
    (to_planar ? kernels::nhwc_to_nchw : kernels::nchw_to_nhwc)(x.data(), y.data(), kBatch, 32, 7, 7);
    benchmark::ClobberMemory();
  }
}

void dropout(benchmark::State& state) {
  const size_t n = size_t(kBatch) * 1568;
  const auto x = random(n, 1);
  std::vector<float> mask(n), y(n);
  uint64_t base = 1;
  for (auto _ : state) {
    kernels::dropout_mask(base++ * 0x9E3779B97F4A7C15ull, 858993459, 1.25f, mask.data(), n);
    kernels::multiply(x.data(), mask.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
}

// Adam over a replica's half of the 99,766 weights (the update chunks are shared by the threads).
void adam(benchmark::State& state) {
  kernels::set_threads(1);
  const size_t n = 99766 / 2;
  auto p = random(n, 1), g = random(n, 2), m = random(n, 3), v = random(n, 4);
  for (float& e : v) e = std::abs(e);
  const kernels::AdamRule r{0.9f, 0.999f, 1e-3f, 1.0f, 1e-8f, 1.0f, 0.0f};
  for (auto _ : state) {
    kernels::adam_update(r, p.data(), g.data(), m.data(), v.data(), 0, n);
    benchmark::ClobberMemory();
  }
}

void register_all() {
  const char* pass[] = {"forward", "backward_weights", "backward_data"};
  for (int p = 0; p < 3; ++p) {
    for (bool cl : {true, false}) {
      const std::string layout = cl ? "" : "/planar";
      if (p < 2) benchmark::RegisterBenchmark((std::string("conv1_16x28x28/") + pass[p] + layout).c_str(), conv, 1, 16, 28, p, cl);
      benchmark::RegisterBenchmark((std::string("conv2_32x14x14/") + pass[p] + layout).c_str(), conv, 16, 32, 14, p, cl);
    }
  }
  const char* part[] = {"bn_statistics", "affine_relu_maxpool", "backward_sums", "backward_dx"};
  for (int p = 0; p < 4; ++p) {
    benchmark::RegisterBenchmark((std::string("tail1_16x28x28/") + part[p]).c_str(), tail, 16, 28, p);
    benchmark::RegisterBenchmark((std::string("tail2_32x14x14/") + part[p]).c_str(), tail, 32, 14, p);
  }
  for (int p = 0; p < 3; ++p) benchmark::RegisterBenchmark((std::string("fc1_1568x60/") + pass[p]).c_str(), linear, 1568, 60, p);
  benchmark::RegisterBenchmark("flatten_to_planar", flatten, 1);
  benchmark::RegisterBenchmark("flatten_back", flatten, 0);
  benchmark::RegisterBenchmark("dropout_1568", dropout);
  benchmark::RegisterBenchmark("adam_half_of_100k", adam);
}

}  // namespace
}  // namespace tailor

int main(int argc, char** argv) {
  tailor::kernels::choose_isa(std::getenv("TAILOR_ISA"));
  std::printf("path: %s\n", tailor::kernels::isa_summary().c_str());
  tailor::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
