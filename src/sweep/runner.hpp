#pragma once
// Runs a sweep's trials as `tailor train` child processes, several at once within a core budget.
// Each trial lives in OUT/trials/<id>/ (id: a hash of its full configuration and seed); a trial
// is finished when its summary.json exists (train writes it last, atomically), so a sweep
// started again, even after SIGKILL, runs only what is not finished.
#include <atomic>
#include <string>

#include "sweep/sweep_file.hpp"

namespace tailor {

struct RunOptions {
  std::string exe;          // the tailor binary for the children
  int jobs = 1;             // trials at once
  int threads_per_job = 1;  // --threads of each trial
  std::string data_dir;     // --data for every trial ("" = train's default)
  std::string progress = "auto";
  // Read between trials (a single-host sweep): once non-zero (a signal number), no trial starts;
  // the running ones stop at their next step, keeping their last finished epoch (after 2 s of not
  // stopping on their own, as a terminal's Ctrl-C makes them, they are sent SIGINT), and
  // run_sweep returns.
  const std::atomic<int>* stop = nullptr;
};

struct SweepOutcome {
  int total = 0, skipped = 0, ran = 0, failed = 0;
  int diverged = 0;  // of failed: trials an earlier run of the sweep recorded as diverged (not rerun)
  int resumed = 0;   // of ran or failed: trials continued from their last finished epoch
  int interrupted = 0;  // trials stopped by `stop` (resumable), counted in none of the above
  int stopped_by = 0;   // the value `stop` held, 0 when the sweep was not stopped
  double seconds = 0;
};

// Writes OUT/sweep.json (the trials) first, then runs what is missing.
SweepOutcome run_sweep(const SweepSpec& spec, const RunOptions& opt);

}  // namespace tailor
