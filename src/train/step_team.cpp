#include "train/step_team.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "kernels/kernels.hpp"

namespace tailor {

namespace {

using Clock = std::chrono::steady_clock;

// How long a thread spins before it sleeps: a helper between two jobs of one step (a few
// microseconds apart), the caller for a helper's last item. A futex wake-up costs tens of
// microseconds, a tenth of an FCN step; beyond this a sleeping thread leaves its core to
// whatever else is running.
constexpr auto kSpin = std::chrono::microseconds(20);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Linux futexes on a 32-bit atomic (std::atomic::wait of GCC 12 missed wake-ups here).
void futex_wait(std::atomic<uint32_t>& a, uint32_t old) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&a), FUTEX_WAIT_PRIVATE, old, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>& a) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&a), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

}  // namespace

// Waits until `a` no longer holds `old` and returns its value: spins for kSpin, then sleeps on
// the futex, counted in sleepers_ so that a waker makes the system call only when one sleeps.
// (sleepers_ is raised before the value is checked again, and a waker changes the value before
// it reads sleepers_, both sequentially consistent: either the sleeper sees the new value or the
// waker sees the sleeper; the futex checks the value once more inside the kernel.)
uint32_t StepTeam::wait_change(std::atomic<uint32_t>& a, uint32_t old) {
  const auto until = Clock::now() + kSpin;
  for (int i = 0;; ++i) {
    const uint32_t v = a.load();
    if (v != old) return v;
    cpu_relax();
    if ((i & 63) == 63 && Clock::now() > until) break;
  }
  for (;;) {
    sleepers_.fetch_add(1);
    if (a.load() == old) futex_wait(a, old);
    sleepers_.fetch_sub(1);
    const uint32_t v = a.load();
    if (v != old) return v;
  }
}

void StepTeam::wake(std::atomic<uint32_t>& a) {
  if (sleepers_.load() > 0) futex_wake_all(a);
}

StepTeam::StepTeam(int helpers) {
  helpers_.reserve(static_cast<size_t>(std::max(helpers, 0)));
  try {
    for (int h = 0; h < helpers; ++h) helpers_.emplace_back([this] { helper_loop(); });
  } catch (...) {  // a thread that could not start: stop the ones that did, then report it
    stop_helpers();
    throw;
  }
}

StepTeam::~StepTeam() { stop_helpers(); }

void StepTeam::stop_helpers() {
  stop_.store(true);
  posted_.fetch_add(1);  // a new "job" wakes every helper
  wake(posted_);
  for (std::thread& t : helpers_) t.join();
}

void StepTeam::work(uint64_t job) {
  const uint64_t gen = job >> 32, count = job & 0xffffffffu;
  const Item fn = fn_.load(std::memory_order_acquire);
  void* ctx = ctx_.load(std::memory_order_acquire);
  uint64_t cur = cursor_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur >> 32) != gen || (cur & 0xffffffffu) >= count) return;
    if (!cursor_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // The claim succeeded within `gen`, so the job is not over and fn, ctx are its own.
    fn(ctx, static_cast<int>(cur & 0xffffffffu));
    if (done_.fetch_add(1) + 1 == count) wake(done_);  // the caller waits for the last one only
    cur = cursor_.load(std::memory_order_acquire);
  }
}

void StepTeam::helper_loop() {
  kernels::set_threads(1);  // this thread's OpenMP setting: oneDNN and the kernels run on it alone
  uint32_t seen = 0;  // posted_'s value when the team was made: a job posted before this thread ran is not missed
  for (;;) {
    seen = wait_change(posted_, seen);
    if (stop_.load()) return;
    work(job_.load(std::memory_order_acquire));
  }
}

void StepTeam::run(int count, Item fn, void* ctx) {
  if (count <= 0) return;
  ++generation_;
  const uint64_t gen = generation_;
  fn_.store(fn, std::memory_order_release);
  ctx_.store(ctx, std::memory_order_release);
  done_.store(0, std::memory_order_release);
  cursor_.store(gen << 32, std::memory_order_release);
  const uint64_t job = (gen << 32) | static_cast<uint32_t>(count);
  job_.store(job, std::memory_order_release);
  posted_.fetch_add(1);
  wake(posted_);
  work(job);
  // Items the helpers claimed may still be running.
  for (uint32_t d = done_.load(); d < static_cast<uint32_t>(count);) d = wait_change(done_, d);
}

}  // namespace tailor
