#pragma once
// What a sweep directory holds, read once for the table, the figures and the report: the
// manifest's trials and, for the finished ones, their summary and per-epoch metrics.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tailor {

struct EpochRow {
  int epoch = 0;
  double train_loss = 0, val_acc = 0, test_acc = 0;  // val_acc is NaN without a validation set
};

// metrics.csv of a run; throws tailor::Error naming the file when it cannot be read.
std::vector<EpochRow> read_metrics(const std::string& path);

struct TrialRecord {
  std::string id, row, group, dir;
  uint64_t seed = 0;
  bool finished = false;     // summary.json exists
  nlohmann::json summary;    // when finished
  std::string label() const { return row + " (seed " + std::to_string(seed) + ")"; }
};

// Every trial of SWEEP_DIR/sweep.json, in manifest order; throws tailor::Error naming the file
// when the manifest is missing or malformed.
std::vector<TrialRecord> read_trials(const std::string& sweep_dir);
std::string sweep_name(const std::string& sweep_dir);

}  // namespace tailor
