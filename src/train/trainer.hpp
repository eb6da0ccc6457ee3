#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "train/config.hpp"
#include "train/run_state.hpp"
#include "util/error.hpp"

namespace tailor {

struct TrainOutcome {
  int64_t weights = 0;
  int64_t epochs_run = 0;
  int64_t train_images = 0;  // per epoch
  double val_acc = 0, test_acc = 0, test_loss = 0, train_seconds = 0;
  std::string stop_reason;  // epochs, target_accuracy, patience
  std::vector<double> epoch_seconds;  // the training pass of each epoch
};

// One finished epoch, as its metrics.csv row says (val_* are NaN with --val 0).
struct EpochReport {
  int64_t epoch = 0, epochs = 0;  // this one (from 1), and the run's --epochs
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0, test_acc = 0, lr = 0;
  double epoch_seconds = 0, elapsed_seconds = 0, images_per_second = 0;
};

// How a caller steers a training besides its settings; every member may be left empty.
struct TrainControl {
  // Read at every step boundary: once it holds a non-zero value (a signal number, say) the run
  // stops there and Interrupted is thrown. The epoch under way is dropped; the directory keeps
  // the resume state of the last finished one, so resume_training continues bit for bit as if
  // nothing had happened. Not read by a run over several MPI ranks (they would have to agree on
  // the step).
  const std::atomic<int>* stop = nullptr;
  // Asked at step boundaries, at most every 50 ms: a non-zero answer stops as `stop` does (the
  // Python module checks for Ctrl-C here, with the interpreter's lock taken only then).
  std::function<int()> poll;
  // The data in memory instead of cfg.data_dir (which config.toml and model.ckpt still name, as
  // where the pictures came from: "" when they came from nowhere on disk).
  const TrainTestData* data = nullptr;
  // Called after every epoch, its row written and its resume state saved; returning false ends
  // the run there (stop reason "callback"), with model.ckpt and summary.json written as for any
  // end. An exception thrown here ends the run as Interrupted does, resumable, and propagates.
  std::function<bool(const EpochReport&)> on_epoch;
  // Train on this process alone even under mpirun (a search's worker: each rank its own trial).
  bool local = false;
  // Off: the test set is never evaluated (test_acc is NaN in metrics.csv, summary.json and the
  // outcome), for a caller that chooses among runs and must not see it (tailor search).
  bool evaluate_test = true;
};

// Trains one model as `cfg` says and writes the run into cfg.out_dir: config.toml, metrics.csv
// (one row per epoch, rewritten atomically after each), summary.json and model.ckpt.
// Throws tailor::Error on bad input and when the loss stops being finite (the rows already
// written and summary.json with stop_reason "diverged" stay). Re-entrant: runs in several
// threads of one process at once, each its own directory, give each the bits it gives alone.
TrainOutcome train(TrainConfig cfg, const TrainControl& control);
inline TrainOutcome train(TrainConfig cfg, const std::atomic<int>* stop = nullptr) {
  TrainControl c;
  c.stop = stop;
  return train(std::move(cfg), c);
}

// Interrupted (tailor/error.hpp) is thrown by train and resume_training when asked to stop.

// The resume state a run keeps in its directory between epochs (removed when the run ends).
inline constexpr const char* kResumeStateFile = "resume.state";
// Continues the run in cfg.out_dir (cfg as read back from its config.toml) from its last
// finished epoch, bit for bit as if it had never stopped (same threads); a run killed before its
// first epoch ended starts again. Throws tailor::Error on a state that is damaged or does not fit.
TrainOutcome resume_training(TrainConfig cfg, const TrainControl& control);
inline TrainOutcome resume_training(TrainConfig cfg, const std::atomic<int>* stop = nullptr) {
  TrainControl c;
  c.stop = stop;
  return resume_training(std::move(cfg), c);
}

// The models a training step runs at once. With data_parallel on (--data-parallel auto) and
// every thread's slice of a batch at least kMinReplicaSlice images, one replica per thread: each
// thread trains its own copy of the model on its slice, single-threaded, as a rank of mpirun
// would (batch norm normalises each slice by its own statistics), and the gradients are summed.
// Otherwise 1: the whole batch goes through the layers, which share the threads.
inline constexpr int64_t kMinReplicaSlice = 32;
int step_replicas(int threads, int64_t batch, bool data_parallel);

std::string tailor_version();

// "cnn conv 16,32 | fc 60, seed 1": a run's name on its curves.png.
std::string run_title(const TrainConfig& cfg);

// Peak resident memory of this process so far, in MiB.
double peak_rss_mb();

}  // namespace tailor
