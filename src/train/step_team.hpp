#pragma once
// The threads of a data-parallel training step, made to keep their speed when other programs
// share the cores. run(count, fn) calls fn(0) .. fn(count - 1), each exactly once, on the calling
// thread and on helper threads; an item goes to whichever thread claims it first, so a helper
// that the operating system has descheduled delays only an item it has already claimed. (An
// OpenMP team instead makes every step wait for all of its threads, running or not: with two
// such jobs on two cores, one of the four threads is often off its core, and every join waits
// for the scheduler; docs/performance.md.)
//
// Every thread of the team runs its items on one OpenMP thread (oneDNN and tailor's kernels run
// single-threaded there), so an item computes the same bits whichever thread takes it.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace tailor {

class StepTeam {
 public:
  // `helpers` threads besides the caller of run(); 0 runs everything on the caller.
  explicit StepTeam(int helpers);
  ~StepTeam();
  StepTeam(const StepTeam&) = delete;
  StepTeam& operator=(const StepTeam&) = delete;

  // Runs fn(ctx, i) for every i in [0, count) and returns when all have returned. fn is
  // noexcept (an exception would leave the job half done): items catch their own. Called from one thread at a time (the training loop's). Allocates nothing.
  using Item = void (*)(void* ctx, int i) noexcept;
  void run(int count, Item fn, void* ctx);
  // The same for a callable f(i), kept by reference.
  template <typename F>
  void run(int count, F& f) {
    run(count, [](void* c, int i) noexcept { (*static_cast<F*>(c))(i); }, &f);
  }
  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

 private:
  void helper_loop();
  void stop_helpers();
  uint32_t wait_change(std::atomic<uint32_t>& a, uint32_t old);
  void wake(std::atomic<uint32_t>& a);
  // Claims and runs items of `job` until none is left or the job has moved on.
  void work(uint64_t job);

  // job_: (generation << 32) | count, published after fn_; cursor_: (generation << 32) | next
  // item. A claim is a compare-and-swap of cursor_ within the claimer's generation, so a helper
  // that wakes late for a finished job can claim nothing of the next one.
  std::atomic<uint64_t> job_{0}, cursor_{0};
  std::atomic<Item> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<uint32_t> posted_{0};    // jobs posted (and the stop): what helpers sleep on
  std::atomic<uint32_t> done_{0};      // items of the current job that have returned
  std::atomic<int> sleepers_{0};       // threads asleep (or about to be) on posted_ or done_
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;
  std::vector<std::thread> helpers_;
};

}  // namespace tailor
