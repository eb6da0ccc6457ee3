// House rule 4: no heap allocation inside a training step after the first batch.
//
// This executable replaces every global operator new / new[] (plain, nothrow, aligned) with a
// version that counts calls while counting is switched on, and keeps the call stacks of the
// first few so a failure says where they came from. A training step is what the trainer does for
// one batch: forward (train) -> softmax cross-entropy with dlogits -> backward -> Adam step.
//
// What the rule covers: this project's code and everything compiled into it (std containers,
// the inline C++ wrappers of dnnl.hpp). What it cannot cover: oneDNN's library itself. malloc
// called directly (its scratchpads, OpenMP's pool) is not seen at all, and the operator new calls
// made from inside libdnnl.so (oneDNN 2.6 builds a std::unordered_map of the arguments in every
// dnnl_primitive_execute, and std::functions for its parallel loops) are counted apart and
// recorded as the test property `new_calls_inside_onednn`, but do not fail the test.
#include <dlfcn.h>
#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "nn/init.hpp"
#include "nn/loss.hpp"
#include "nn/model_spec.hpp"
#include "optim/optimizer.hpp"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_new_calls{0};
// Calls made from inside libdnnl (operator new's caller is in it): oneDNN's own bookkeeping per
// primitive execution, which no change to tailor's code can remove.
std::atomic<int64_t> g_onednn_calls{0};

// Full stacks of the first few calls from outside libdnnl (the ones to fix first) and of the
// first call from inside it.
constexpr int kMaxTraces = 3, kTraceDepth = 32;
struct Trace {
  void* frames[kTraceDepth];
  int depth = 0;
};
Trace g_traces[kMaxTraces], g_onednn_trace;
std::atomic<int> g_traces_taken{0};
std::atomic<bool> g_onednn_trace_taken{false};
thread_local bool t_tracing = false;  // backtrace() and dladdr() must not recurse into here

bool in_onednn(void* code_address) {
  Dl_info info;
  return dladdr(code_address, &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "libdnnl") != nullptr;
}

// `caller` is the return address of the operator new that was called.
void note_call(void* caller) {
  g_new_calls.fetch_add(1);
  if (t_tracing) return;
  t_tracing = true;
  Trace t;
  t.depth = backtrace(t.frames, kTraceDepth);
  if (in_onednn(caller)) {
    g_onednn_calls.fetch_add(1);
    if (!g_onednn_trace_taken.exchange(true)) g_onednn_trace = t;
  } else {
    const int k = g_traces_taken.fetch_add(1);
    if (k < kMaxTraces) g_traces[k] = t;
  }
  t_tracing = false;
}

void* counted_allocate(std::size_t size, std::size_t align, bool nothrow, void* caller) {
  if (g_counting.load(std::memory_order_relaxed)) note_call(caller);
  if (size == 0) size = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (!p && !nothrow) throw std::bad_alloc();
  return p;
}

}  // namespace

// The replaceable global allocation functions ([new.delete]); all memory goes back with free().
// __builtin_return_address(0) is the code that called operator new.
void* operator new(std::size_t n) {
  return counted_allocate(n, 0, false, __builtin_return_address(0));
}
void* operator new[](std::size_t n) {
  return counted_allocate(n, 0, false, __builtin_return_address(0));
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_allocate(n, static_cast<std::size_t>(a), false, __builtin_return_address(0));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_allocate(n, static_cast<std::size_t>(a), false, __builtin_return_address(0));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_allocate(n, 0, true, __builtin_return_address(0));
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_allocate(n, 0, true, __builtin_return_address(0));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_allocate(n, static_cast<std::size_t>(a), true, __builtin_return_address(0));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_allocate(n, static_cast<std::size_t>(a), true, __builtin_return_address(0));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace tailor {

namespace {

struct NewCalls {
  int64_t total = 0, in_onednn = 0;
  int64_t outside_onednn() const { return total - in_onednn; }
};

void print_trace(const char* title, const Trace& t) {
  std::fprintf(stderr, "--- %s\n", title);
  backtrace_symbols_fd(t.frames, t.depth, STDERR_FILENO);
}

// Runs f with counting on and returns how many operator-new calls it made.
template <class F>
NewCalls count_new_calls(F&& f) {
  g_new_calls = 0;
  g_onednn_calls = 0;
  g_traces_taken = 0;
  g_onednn_trace_taken = false;
  g_counting = true;
  f();
  g_counting = false;
  return {g_new_calls, g_onednn_calls};
}

// The stacks of the first calls counted: frames in shared libraries are named; the test's own
// frames (tailor_core is linked in statically) are offsets for `addr2line -f -C -e <test>`.
void print_first_stacks() {
  const int ours = std::min<int>(g_traces_taken, kMaxTraces);
  for (int i = 0; i < ours; ++i)
    print_trace("operator new called from outside libdnnl", g_traces[i]);
  if (g_onednn_trace_taken) print_trace("operator new called from inside libdnnl", g_onednn_trace);
}

std::ostream& operator<<(std::ostream& m, const NewCalls& c) {
  return m << c.total << " operator new calls (" << c.in_onednn << " of them inside libdnnl)";
}

// The oneDNN-internal count goes to the test's XML output; stacks to stderr when the test fails.
void report(const NewCalls& calls) {
  ::testing::Test::RecordProperty("new_calls_inside_onednn", std::to_string(calls.in_onednn));
  if (calls.outside_onednn() != 0) print_first_stacks();
}

TEST(AllocCounter, SeesEveryFormOfNew) {
  // The counter itself must be able to fail the tests below.
  struct alignas(64) Wide { float v[16]; };
  int* a = nullptr;
  int* b = nullptr;
  int* c = nullptr;
  Wide* d = nullptr;
  Wide* e = nullptr;
  const NewCalls calls = count_new_calls([&] {
    a = new int(1);
    b = new int[3];
    c = new (std::nothrow) int(2);
    d = new Wide;     // aligned new
    e = new Wide[2];  // aligned new[]
    std::vector<float> grows;
    grows.push_back(1.0f);
  });
  delete a;
  delete[] b;
  delete c;
  delete d;
  delete[] e;
  EXPECT_EQ(calls.total, 6);
  EXPECT_EQ(calls.in_onednn, 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(d) % 64, 0u);
}

// A model, its optimizer and one batch of random data (N up to 32, item (1, 28, 28) or (784)).
class StepRig {
 public:
  explicit StepRig(const ModelSpec& spec) : model_(build_model(spec, 3)) {
    Rng rng(4);
    init_params(*model_, InitKind::kaiming_uniform, spec.activation, rng);
    optimizer_ = std::make_unique<Optimizer>(OptimConfig{}, model_->num_values());  // Adam
    const int64_t item = model_->item_shape().numel();
    x_.resize(kMaxBatch * item);
    for (float& v : x_) v = rng.uniform(0.0f, 1.0f);
    labels_.resize(kMaxBatch);
    for (auto& y : labels_) y = static_cast<int32_t>(rng.below(spec.classes));
    dlogits_.resize(kMaxBatch * spec.classes);
  }

  // One training step on the first n items; returns the mean loss. Nothing here may allocate
  // (Shape::batched, unlike Shape{...}, builds a shape without a vector).
  double step(int64_t n) {
    const ConstView x(x_.data(), Shape::batched(n, model_->item_shape()));
    const ConstView logits = model_->forward(x, Mode::train);
    const View dlogits{dlogits_.data(), logits.shape};
    const LossStats stats = softmax_cross_entropy(logits, labels_.data(), dlogits);
    model_->backward(dlogits);
    optimizer_->step(model_->values(), model_->grads(), 1e-3f);
    return stats.loss_sum / static_cast<double>(n);
  }

  static constexpr int64_t kMaxBatch = 32;

 private:
  std::unique_ptr<Sequential> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<float> x_, dlogits_;
  std::vector<int32_t> labels_;
};

ModelSpec small_cnn() {
  // x (N, 1, 28, 28) -> conv 4 -> bn -> relu -> pool -> conv 8 -> bn -> relu -> pool (N, 8, 7, 7)
  //   -> flatten -> linear 16 -> bn -> relu -> dropout 0.2 -> linear 10
  ModelSpec spec = default_spec(Family::cnn);
  spec.channels = {4, 8};
  spec.hidden = {16};
  spec.batchnorm = true;
  spec.dropout = 0.2f;
  return spec;
}

ModelSpec small_staged() {
  // --arch stages: conv 4 -> tail (pool), a residual stage with a strided projection, a
  // depthwise-separable residual stage, global average pooling, dropout, linear 10.
  ModelSpec spec = default_spec(Family::cnn);
  parse_arch("4,max | 8x2,res,s2 | 8x2,sep,res | gap", spec);
  spec.dropout = 0.2f;
  return spec;
}

ModelSpec small_fcn() {
  // x (N, 784) -> [linear -> bn -> relu -> dropout 0.2] x {32, 16} -> linear 10
  ModelSpec spec = default_spec(Family::fcn);
  spec.hidden = {32, 16};
  spec.batchnorm = true;
  spec.dropout = 0.2f;
  return spec;
}

// CNN and FCN as the families build them, and a CNN of stages (--arch).
enum class Kind { cnn, fcn, staged };
class TrainingStep : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override { kernels::set_threads(2); }
  static ModelSpec spec() {
    return GetParam() == Kind::cnn ? small_cnn() : GetParam() == Kind::fcn ? small_fcn() : small_staged();
  }
};

TEST_P(TrainingStep, SteadyStateAllocatesNothing) {
  StepRig rig(spec());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(std::isfinite(rig.step(32)));  // warm-up
  double loss = 0;
  const NewCalls calls = count_new_calls([&] {
    for (int i = 0; i < 5; ++i) loss += rig.step(32);
  });
  report(calls);
  EXPECT_EQ(calls.outside_onednn(), 0) << "5 training steps of batch 32 made " << calls;
  EXPECT_TRUE(std::isfinite(loss));
}

TEST_P(TrainingStep, AlternatingFullAndLastBatchAllocatesNothing) {
  // A data set whose size is not a multiple of the batch ends every epoch with a smaller batch;
  // 20 stands for it. Each size is seen once before counting.
  StepRig rig(spec());
  for (int64_t n : {32, 32, 20}) ASSERT_TRUE(std::isfinite(rig.step(n)));
  double loss = 0;
  const NewCalls calls = count_new_calls([&] {
    for (int i = 0; i < 6; ++i) loss += rig.step(i % 2 == 0 ? 32 : 20);
  });
  report(calls);
  EXPECT_EQ(calls.outside_onednn(), 0) << "6 steps alternating batch 32 and 20 made " << calls;
  EXPECT_TRUE(std::isfinite(loss));
}

INSTANTIATE_TEST_SUITE_P(Models, TrainingStep, ::testing::Values(Kind::cnn, Kind::fcn, Kind::staged),
                         [](const auto& info) {
                           return info.param == Kind::cnn ? "cnn" : info.param == Kind::fcn ? "fcn" : "staged";
                         });

}  // namespace
}  // namespace tailor
