// The threads of a data-parallel step (src/train/step_team.hpp): every item of every job runs
// exactly once, whichever thread takes it, also when a helper is slow (as one the operating
// system has descheduled); the caller takes what the helpers do not.
#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "train/step_team.hpp"

namespace tailor {
namespace {

TEST(StepTeam, EveryItemOfEveryJobRunsOnce) {
  for (int helpers : {0, 1, 3}) {
    SCOPED_TRACE(helpers);
    StepTeam team(helpers);
    EXPECT_EQ(team.threads(), helpers + 1);
    std::vector<std::atomic<int>> runs(64);
    for (int job = 0; job < 2000; ++job) {
      const int count = 1 + job % 64;
      for (int i = 0; i < count; ++i) runs[static_cast<size_t>(i)].store(0);
      auto item = [&](int i) { runs[static_cast<size_t>(i)].fetch_add(1); };
      team.run(count, item);
      for (int i = 0; i < count; ++i) ASSERT_EQ(runs[static_cast<size_t>(i)].load(), 1) << "job " << job << " item " << i;
    }
    auto none = [](int) { FAIL() << "an empty job ran an item"; };
    team.run(0, none);
  }
}

// An item that sleeps stands for a helper taken off its core mid-item: the run waits for it;
// the other items go to the threads that are running, and results do not depend on who ran what.
TEST(StepTeam, ASlowItemDelaysOnlyItselfAndResultsDoNotDependOnTheThread) {
  StepTeam team(1);
  std::vector<double> out(8), want(8);
  for (int i = 0; i < 8; ++i) want[static_cast<size_t>(i)] = 1.0 / (i + 1);
  for (int job = 0; job < 20; ++job) {
    std::fill(out.begin(), out.end(), 0.0);
    auto item = [&](int i) {
      if (i == job % 8) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      out[static_cast<size_t>(i)] = 1.0 / (i + 1);
    };
    team.run(8, item);
    ASSERT_EQ(out, want) << "job " << job;
  }
}

// Items run on one OpenMP thread wherever they run: what makes an item's bits the same on every
// thread (oneDNN sizes its primitives by omp_get_max_threads()).
TEST(StepTeam, HelpersRunOnOneOpenMpThread) {
  StepTeam team(1);
  std::vector<int> seen(16, 0);
  std::atomic<bool> helped{false};
  const std::thread::id caller = std::this_thread::get_id();
  auto item = [&](int i) {
    if (std::this_thread::get_id() != caller) {
      seen[static_cast<size_t>(i)] = omp_get_max_threads();
      helped = true;
    }
    // Item 0 holds its thread until the helper has taken an item (a busy machine may be slow to
    // run a new thread), at most 10 s.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (i == 0 && !helped && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  team.run(16, item);
  int helper_items = 0;
  for (int s : seen)
    if (s != 0) {
      ++helper_items;
      EXPECT_EQ(s, 1);
    }
  EXPECT_GT(helper_items, 0);
}

}  // namespace
}  // namespace tailor
