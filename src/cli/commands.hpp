#pragma once
// One function pair per subcommand: add_* declares the options, the returned callback runs it.
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "search/search.hpp"
#include "sweep/sweep_file.hpp"
#include "train/config.hpp"

namespace tailor::cli {

using Run = std::function<int()>;

Run add_train(CLI::App& app);
Run add_eval(CLI::App& app);
Run add_predict(CLI::App& app);
Run add_summary(CLI::App& app);
Run add_bench(CLI::App& app);
Run add_sweep(CLI::App& app);
Run add_search(CLI::App& app);
Run add_report(CLI::App& app);
Run add_inspect(CLI::App& app);
Run add_serve(CLI::App& app);
Run add_export(CLI::App& app);
Run add_data(CLI::App& app);


// `train`'s options as the library shows them: the long name (without dashes), its help, its
// default as text, and whether it is a flag (on/off, no value).
struct TrainOptionInfo {
  std::string name, help, default_value;
  bool flag = false;
  bool negatable = false;  // a flag with a --no- form
  std::string type;        // INT, FLOAT or TEXT (CLI11's names); "" for a flag
};
std::vector<TrainOptionInfo> train_options();
// The same table as sweep files and search spaces see it, and one value checked by train's own
// parser (read_sweep and read_space take both; the sweep-file fuzzer too).
OptionTable train_option_table();
// The configuration `tailor train --NAME VALUE ...` would run, from (name, value) pairs in the
// command line's names without dashes ("lr", "0.003"; a flag's value "true" or "false"), through
// train's own parser and checks. Throws OptionError naming the option on an unknown one or a bad
// value (--resume is not accepted here), Error on a bad combination.
void check_train_option(const std::string& key, const std::string& value);
TrainConfig train_config_from_options(const std::vector<std::pair<std::string, std::string>>& options);

// --time's value: "45m", "2h", "90s", "1h30m" or seconds; throws tailor::Error naming --time.
double parse_duration(const std::string& text);

// What `tailor search FILE --NAME VALUE ...` would run: the space file read and the flags
// (names without dashes: out, jobs, threads-per-job, time, trials, seed, schedule, sampler, data,
// progress) applied through search's own parser and checks. Throws OptionError naming the flag
// (unknown, or a bad value), tailor::Error on a bad space or combination.
struct SearchSetup {
  SearchSpace space;
  SearchOptions options;
};
SearchSetup search_setup_from_flags(const std::string& file, const std::vector<std::pair<std::string, std::string>>& flags);

}  // namespace tailor::cli
