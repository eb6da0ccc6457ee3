#pragma once
// Progress of a run: a redrawn bar on a terminal, one plain line per epoch otherwise.
#include <chrono>
#include <cstdint>
#include <string>

namespace tailor {

class Progress {
 public:
  // mode: "auto" (bar when stderr is a terminal), "bar", "lines" or "none".
  Progress(const std::string& mode, int64_t epochs, int64_t batches_per_epoch);
  // Called after every batch; redraws at most ten times a second.
  void batch(int64_t epoch, int64_t done, double mean_loss, double acc);
  // Called after every epoch with its finished line.
  void epoch(const std::string& line);

 private:
  bool bar_ = false, quiet_ = false;
  int64_t epochs_, batches_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace tailor
