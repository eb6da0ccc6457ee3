#pragma once
// One function pair per subcommand: add_* declares the options, the returned callback runs it.
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "sweep/sweep_file.hpp"

namespace tailor::cli {

using Run = std::function<int()>;

Run add_train(CLI::App& app);
Run add_eval(CLI::App& app);
Run add_predict(CLI::App& app);
Run add_summary(CLI::App& app);
Run add_bench(CLI::App& app);
Run add_sweep(CLI::App& app);
Run add_report(CLI::App& app);
Run add_inspect(CLI::App& app);
Run add_serve(CLI::App& app);
Run add_export(CLI::App& app);
Run add_data(CLI::App& app);

// `train`'s options as sweep files see them, and one value checked by train's own parser
// (read_sweep takes both; the sweep-file fuzzer too).
OptionTable train_option_table();
void check_train_option(const std::string& key, const std::string& value);

}  // namespace tailor::cli
