#pragma once
// Search spaces: what `tailor search SPACE.toml` explores (docs/search.md). Every key is a
// `tailor train` option, read through the same table and parser as the program and sweep files:
//
//   name = "cnn-100k"                  # results go to `out` (default runs/search-<name>)
//   seed = 1                           # the sampler's stream and every trial's --seed
//   trials = 60                        # trials sampled at most (0: until --time)
//   objectives = ["max val_acc", "min weights"]     # val_acc, val_loss, weights, mflops, train_seconds
//   constraints = ["weights <= 100k", "mflops <= 20"]   # weights, mflops: checked before training
//   [base]                             # fixed options, as a sweep's [base]
//   model = "cnn"
//   [space]                            # one distribution per varied option
//   lr = { log_uniform = [3e-4, 1e-2] }
//   optimizer = { choice = ["adam", "sgd"] }
//   momentum = { uniform = [0.8, 0.98], when = { optimizer = ["sgd"] } }   # only under sgd
//   [schedule]                         # asha (min-epochs, max-epochs, eta) or none (max-epochs)
//   kind = "asha"
//   min-epochs = 1
//   max-epochs = 20
//   eta = 3
//   [sampler]                          # tpe after `startup` random trials, or random
//   kind = "tpe"
//   startup = 10
//   stratify = ["weights"]             # choice options whose values take turns (below)
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sweep/option_value.hpp"
#include "sweep/sweep_file.hpp"

namespace tailor {

// A point of the space: the varied options that apply to it (key -> command-line text).
using Point = std::map<std::string, std::string>;

struct SpaceParam {
  std::string key;
  Distribution dist;
  // Applies only where the option `when_key` (varied before it, or fixed in [base]) takes one of
  // `when_values`; empty: always.
  std::string when_key;
  std::vector<std::string> when_values;
  bool applies(const Point& p, const std::map<std::string, std::string>& base) const;
};

// What a trial is judged or bounded by. weights and mflops are known before it trains.
enum class Metric { val_acc, val_loss, weights, mflops, train_seconds };
Metric parse_metric(const std::string& name);  // throws tailor::Error listing the names
std::string metric_name(Metric m);

struct Constraint {
  Metric metric = Metric::weights;
  double limit = 0;  // metric <= limit
  std::string text;  // as the file writes it
};

struct Objective {
  Metric metric = Metric::val_acc;
  bool maximize = true;
};

struct SearchSpace {
  std::string name, path, out;
  uint64_t seed = 1;
  int64_t trials = 0;  // at most this many sampled; 0: no limit
  std::map<std::string, std::string> base;
  std::vector<SpaceParam> params;  // every `when` names an earlier param or a [base] key
  std::vector<Constraint> constraints;
  std::vector<Objective> objectives;
  bool asha = true;
  int64_t min_epochs = 1, max_epochs = 20, eta = 3;
  bool tpe = true;
  int64_t startup = 10;
  // Choice options (always applying) whose values take turns: each new trial gets the value the
  // fewest trials so far have had, so that every budget of a weights objective, say, is tried as
  // often as the others; the sampler draws the rest of the point.
  std::vector<std::string> stratify;
  // The epochs at which trials are compared: min, min*eta, min*eta^2, ... below max, then max
  // (schedule none: max alone).
  std::vector<int64_t> rungs() const;
  // A digest of everything that decides the search's course (not its name, out or trials), so
  // that a journal is continued only by the space that wrote it.
  std::string fingerprint() const;
  // The varied option named `key`, or nullptr.
  const SpaceParam* param(const std::string& key) const;
};

// Reads a space file; anything wrong is one tailor::Error "FILE:LINE: key 'K': what".
SearchSpace read_space(const std::string& path, const OptionTable& options, const OptionCheck& check);

}  // namespace tailor
