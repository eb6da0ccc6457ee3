#pragma once
// A run's state between epochs, spelled once: the trainer keeps a RunState as it goes, and
// resume.state is that RunState plus the moment's weights and random streams. Every field's key
// in the file appears in one list (run_state.cpp, fields()): a new field is one line there and
// one member here.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "train/evaluate.hpp"

namespace tailor {

// The weights, batch-norm statistics and optimizer state of one moment of a run, and (--ema) the
// moving averages of the first two.
struct Snapshot {
  std::vector<float> values, stats, optim;
  int64_t steps = 0;
  std::vector<float> ema_values, ema_buffers;
  bool empty() const { return values.empty(); }
};

// What a run has found so far and carries from one epoch to the next.
struct RunState {
  int64_t epoch = 0;  // epochs finished
  std::string metrics;  // metrics.csv as written so far (its header included)
  double train_seconds = 0;
  double elapsed_seconds = 0;  // wall time of the sessions before this one (a resumed run's)
  std::vector<double> epoch_seconds;  // the training pass of each epoch
  EvalResult val, test;  // the last epoch's
  std::string stop_reason;  // set when the run stops before its last epoch
  // Early stopping: the best epoch so far by validation loss, with its own optimizer state.
  double best_val_loss = INFINITY;
  int64_t best_epoch = 0, since_best = 0;
  Snapshot best;
};

// The moment of saving: the run's weights, statistics, optimizer state and averages, and its
// random streams (the shuffle's, each replica's augmentation and every dropout stream).
struct LiveState {
  Snapshot now;
  uint64_t shuffle_rng = 0;
  std::vector<uint64_t> augment_rngs;  // one per replica
  std::vector<uint64_t> dropout_rngs;
};

// The sizes a resume state must fit: the run's model, optimizer, streams and settings.
struct ResumeShape {
  size_t values = 0, stats = 0, optim = 0, dropout_streams = 0;  // dropout: every replica's
  size_t replicas = 1;  // models of a data-parallel step (step_replicas)
  int64_t epochs = 0;   // the run's --epochs: the state's epoch must lie in [1, epochs]
  bool ema = false;     // the run keeps moving averages (--ema)
};

struct ResumeState {
  RunState run;
  LiveState live;
};

// resume.state: a checkpoint file (train/checkpoint.hpp) whose arrays hold the moment's weights,
// statistics and optimizer state, then the best epoch's, and whose metadata the rest. Atomic.
void write_resume_state(const std::string& path, const RunState& run, const LiveState& live);
// How far a resume state got, without checking that it fits a run: its last finished epoch and
// metrics.csv as it stood then. Throws tailor::Error naming the file when it is damaged.
struct ResumeProgress {
  int64_t epoch = 0;
  std::string metrics;
};
ResumeProgress read_resume_progress(const std::string& path);
// Throws tailor::Error naming the file on anything damaged or not fitting `shape`.
ResumeState read_resume_state(const std::string& path, const ResumeShape& shape);

}  // namespace tailor
