#pragma once
// Sweep files: a base configuration, named rows, grid and random axes and seeds, expanded into
// trials. Every key is a `tailor train` option (its long name without the dashes), so anything
// `train` can do a sweep can set or vary:
//
//   name = "optimizers"            # the sweep; results go to `out` (default runs/<name>)
//   seeds = [1, 2, 3]
//   [base]                         # every trial starts from these
//   model = "cnn"
//   weights = "100k"
//   [[row]]                        # named trials; each overrides base (none: one row, "base")
//   name = "FCN 100k"
//   model = "fcn"
//   [grid]                         # every combination, for every row
//   optimizer = ["sgd", "adam"]
//   [random]                       # `trials` samples, for every row and grid point
//   trials = 8
//   lr = { log_uniform = [1e-4, 1e-2] }   # also uniform, int_uniform, choice = [...]
//
// A top-level `references = "FILE.csv"` (relative to the sweep file) names published results to
// draw beside the sweep's own in figures/accuracy_vs_weights.png (sweep/references.hpp).
//
// `teacher = "row:NAME"` (train --teacher, knowledge distillation) names another row of the file:
// each seed's trial learns from that row's trial of the same seed, so that both hold out the
// same validation images. The row named must have one trial per seed (no grid or random axes)
// and no such teacher of its own; the trials that learn run after all the others.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tailor {

// What the sweep needs to know of each `train` option.
struct OptionInfo {
  bool is_flag = false;    // takes no value (--nesterov, --batchnorm/--no-batchnorm)
  bool negatable = false;  // has a --no- form
  std::string type;        // INT, FLOAT or TEXT; "" for a flag
};
using OptionTable = std::map<std::string, OptionInfo>;
// Checks one option's value as `train` would; throws tailor::Error with the reason.
using OptionCheck = std::function<void(const std::string& key, const std::string& value)>;

struct Setting {
  std::string key, value;  // value in command-line form: "0.001", "120,60", "true"
};

struct TrialSpec {
  std::string row;                // the row name, with the grid/random values that made it
  std::string row_name;           // the [[row]]'s own name ("base" when the file has none)
  uint64_t seed = 1;
  std::vector<Setting> settings;  // sorted by key, one per key
  // `teacher = "row:NAME"`: the id of that row's trial of the same seed, whose run this one
  // learns from (train --teacher OUT/trials/ID); such trials run once every other has ended.
  std::string teacher_id;
  std::vector<std::string> args() const;  // train arguments, without --seed/--out/--threads
  std::string group_key() const;          // everything but the seed: trials that differ only by seed
  std::string id() const;                 // 16 hex digits of a hash of group_key and seed
  const std::string* get(const std::string& key) const;
};

struct SweepSpec {
  std::string name, out, path;
  std::string references;  // the references CSV's text, checked; empty when the file names none
  std::vector<uint64_t> seeds;
  std::vector<TrialSpec> trials;
};

// The most trials one sweep file may expand to (a sweep of the study is hundreds).
inline constexpr uint64_t kMaxSweepTrials = 100000;

// Reads and expands a sweep file; any unknown key, wrong type, empty axis, or value `train` would
// refuse is one tailor::Error "FILE:LINE: key 'K': what", before anything runs; so is a file that
// expands to more than kMaxSweepTrials trials (counted before expanding).
SweepSpec read_sweep(const std::string& path, const OptionTable& options, const OptionCheck& check);

// Sets every trial's teacher_id from its `teacher = "row:NAME"` (read_sweep does; call it again
// after changing the trials' seeds). Throws tailor::Error naming the file for a row that is not
// there, has several trials a seed, or learns from a row itself.
void resolve_teachers(SweepSpec& spec);

}  // namespace tailor
