// TOML that tailor reads: sweep files (read_sweep, with `train`'s own option table and checks, as
// `tailor sweep` runs it) and a run's config.toml (config_from_toml, as `train --resume` runs it).
#include <cstdint>

#include "cli/commands.hpp"
#include "fuzz_input.hpp"
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
    (void)tailor::config_from_toml(text, "config.toml");
  } catch (const tailor::Error&) {
  }
  return 0;
}
