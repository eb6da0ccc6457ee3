#pragma once
// What a search knows of its trials (the journal, replayed), and the files it writes from that:
// trials.csv, pareto.csv, best.toml, the figures and report.html (docs/search.md).
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "search/space.hpp"

namespace tailor {

struct EpochRec {
  double val_acc = 0, val_loss = 0, seconds = 0, t = 0;
};

enum class TrialState { waiting, running, finished, failed };

struct Trial {
  int64_t id = 0;
  Point point;
  int64_t weights = 0;
  double mflops = 0;
  std::map<int64_t, EpochRec> epochs;  // finished epochs, as the journal has them
  int rung = -1;                       // the highest rung it has a result at
  std::set<int> promoted;              // the rungs it was promoted from
  TrialState state = TrialState::running;        // running: a job is due (or under way: `active`)
  bool active = false;
  bool pruned = false;
  int64_t target = 0;  // the epoch its job runs to
  std::string error;
  std::set<int> ranks;
  double test_acc = std::nan("");

  int64_t last_epoch() const { return epochs.empty() ? 0 : epochs.rbegin()->first; }
  double seconds_to(int64_t epoch) const {
    double s = 0;
    for (const auto& [e, r] : epochs)
      if (e <= epoch) s += r.seconds;
    return s;
  }
};

// What the writers read: the space, its rungs (the epochs trials are compared at), the trials,
// and the --data the search was given ("" when none).
struct SearchView {
  const SearchSpace& space;
  const std::vector<int64_t>& rungs;
  const std::deque<Trial>& trials;
  std::string data_dir;
};

// A trial's objectives at rung k, each to be minimised (a maximised one negated; a value that is
// not finite ranks last).
std::vector<double> trial_objectives(const SearchSpace& space, const std::vector<int64_t>& rungs, const Trial& t, int k);
// The Pareto set: among the finished trials (or, while none is, those at the highest rung
// reached), the non-dominated ones by the objectives at that rung; indices into v.trials.
std::vector<size_t> pareto_set(const SearchView& v);
// OUT/trials.csv, pareto.csv and best.toml (a sweep file retraining the Pareto set with 3 seeds).
void write_search_tables(const SearchView& v);
// OUT/figures/*.png and report.html.
void write_search_figures(const SearchView& v);
// The lines `tailor search` prints at the end: the Pareto set and where the files are.
std::string search_summary(const SearchView& v);

}  // namespace tailor
