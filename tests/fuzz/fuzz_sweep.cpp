// What tailor reads from a sweep or search directory: sweep files (read_sweep, with `train`'s own
// option table and checks, as `tailor sweep` runs it), search spaces (read_space, as `tailor
// search` runs it), a search journal (Journal::open: torn last lines cut, damaged ones refused)
// and a run's config.toml (config_from_toml, as `train --resume` runs it).
#include <cstdint>

#include "cli/commands.hpp"
#include "fuzz_input.hpp"
#include "search/journal.hpp"
#include "search/space.hpp"
#include "sweep/sweep_file.hpp"
#include "train/config.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tailor::OptionTable options = tailor::cli::train_option_table();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = tailor::fuzz::write_input(text, "sweep.toml");
  try {
    const tailor::SweepSpec spec = tailor::read_sweep(path, options, tailor::cli::check_train_option);
    if (spec.trials.empty() || spec.trials.size() > tailor::kMaxSweepTrials) __builtin_trap();
    for (const tailor::TrialSpec& t : spec.trials) (void)t.args();
  } catch (const tailor::Error&) {
  }
  try {
    const tailor::SearchSpace space = tailor::read_space(path, options, tailor::cli::check_train_option);
    if (space.objectives.empty() || space.rungs().empty() || space.rungs().back() != space.max_epochs) __builtin_trap();
    (void)space.fingerprint();
  } catch (const tailor::Error&) {
  }
  try {
    // The journal cuts a torn last line off its file: a copy of the input, so the input stays.
    const std::string journal = tailor::fuzz::write_input(text, "search.jsonl");
    tailor::Journal j;
    const auto records = j.open(journal, {{"type", "search"}, {"space", "0123456789abcdef"}});
    if (records.empty() || records.front().value("type", "") != "search") __builtin_trap();
  } catch (const tailor::Error&) {
  }
  try {
    (void)tailor::config_from_toml(text, "config.toml");
  } catch (const tailor::Error&) {
  }
  return 0;
}
