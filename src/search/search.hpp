#pragma once
// `tailor search`: asynchronous successive halving (Li et al., ASHA) over a search space, with
// several objectives ranked by non-dominated sorting and crowding distance (as MO-ASHA,
// Schmucker et al. 2021), new points from random draws and then the tree-structured Parzen
// estimator. Every trial trains in this process (worker threads; under mpirun also on the other
// ranks) as `tailor train` would, in OUT/trials/NNNN/, with its schedule laid out for the maximum
// epochs; at a rung it pauses (its resume state kept) and, when promoted, continues from there.
//
// Everything that happens goes to OUT/search.jsonl first (journal.hpp): the search started again
// with the same command continues where it stopped, without recomputing a finished epoch.
// Decisions read validation metrics only; the test set is evaluated for the final Pareto set
// alone, and reported apart (pareto.csv).
#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "search/space.hpp"
#include "train/config.hpp"

namespace tailor {

// The configuration `tailor train` would run with these options (cli::train_config_from_options).
using ConfigMaker = std::function<TrainConfig(const std::vector<std::pair<std::string, std::string>>&)>;

struct SearchOptions {
  int jobs = 1;             // trials trained at once in this process
  int threads_per_job = 1;  // --threads of each
  std::string data_dir;     // --data for every trial ("" = [base]'s or train's default)
  double time_limit = 0;    // seconds this invocation may run (0: no limit); then as `soft_stop`
  int64_t trials = -1;      // trials sampled at most (-1: the space file's)
  std::string progress = "auto";  // auto, bar, lines or none
  // Non-zero (a signal number): no job starts, and the running trials stop at the end of their
  // epoch under way. `hard_stop`: they stop at their next step, dropping that epoch.
  const std::atomic<int>* soft_stop = nullptr;
  const std::atomic<int>* hard_stop = nullptr;
  // Asked about every 200 ms from the thread that called run_search: a first non-zero answer
  // stops as soft_stop does, a second as hard_stop (the Python module checks for Ctrl-C here).
  std::function<int()> poll;
};

struct SearchOutcome {
  bool complete = false;   // every trial sampled and nothing left to promote
  bool timed_out = false;  // --time ran out
  int stopped_by = 0;      // the signal (or poll's answer) that stopped it, 0 when none did
  int64_t trials = 0, finished = 0, pruned = 0, failed = 0, epochs_run = 0, epochs_recovered = 0;
  double seconds = 0;
  std::string summary;  // the lines printed at the end: Pareto set and where the files are
};

// Runs (or continues) the search into space.out. Under mpirun, rank 0 schedules and every rank
// trains; the other ranks return an empty outcome when rank 0 has no more work for them.
SearchOutcome run_search(const SearchSpace& space, const SearchOptions& options, const ConfigMaker& make_config);

// Checks that some point of the space meets its constraints, drawing up to `draws` random points
// and sizing each on data of `shape`'s input, and that so does some point with each value of a
// stratified choice; throws tailor::Error naming the constraints.
void check_constraints_reachable(const SearchSpace& space, const ConfigMaker& make_config, int64_t channels,
                                 int64_t height, int64_t width, int64_t classes, int draws = 1000);

}  // namespace tailor
