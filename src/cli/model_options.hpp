#pragma once
// The model options shared by `train` and `summary`, the checks every command's options use, and
// the Ctrl-C handling of the long commands (train, sweep).
#include <signal.h>

#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "nn/model_spec.hpp"

namespace tailor::cli {

struct ModelOptions {
  std::string family = "cnn";
  std::string weights;   // "" -> 100k unless widths are given
  std::string hidden;    // "120,60"
  std::string channels;  // "16,32"
  bool batchnorm = true;
  float dropout = 0.2f;
  std::string activation = "relu";
  std::string pool = "max";
  std::string arch;      // a CNN built from stages (nn/arch.hpp)
};

void add_model_options(CLI::App& app, ModelOptions& o);

// The template spec and the weight target (0: widths used as given).
struct ResolvedModel {
  ModelSpec spec;
  int64_t target = 0;
};
ResolvedModel resolve_model(const ModelOptions& o);

// --tta of the commands that use a saved run (eval, predict, inspect, serve, export): run (the
// run's own test-time augmentation, the default), none or flip.
void add_tta_option(CLI::App& app, std::string& tta);

// A number in [lo, hi]; unlike CLI::Range it refuses nan and inf, which compare false and would
// slip through a plain range check ("--lr nan").
CLI::Validator finite_range(double lo, double hi);

// The cores this process may run on (its CPU affinity, so a container's or taskset's limit counts).
int available_cores();
// A thread count as the user gave it (0: all cores), capped at the available cores with one
// warning naming `flag`: more threads than cores only make every barrier wait (measured: an FCN
// epoch 42.7 s with --threads 1024 on 2 cores, under 1 s with 2).
int resolve_threads(int requested, const std::string& flag);

// Parses (name, value) pairs — command-line names without dashes, a flag's value "true" or
// "false" — as the subcommand `c` of `app` would parse `--name value ...` after `leading` (its
// name and positionals): the program's own checks for the library and search setups. Throws
// OptionError naming the option: unknown ones (`command` names the subcommand in the message)
// and bad values.
void parse_named_options(CLI::App& app, const CLI::App* c, std::vector<std::string> leading,
                         const std::vector<std::pair<std::string, std::string>>& options, const std::string& command);

// SIGINT and SIGTERM go to `handler` for this object's life (a signal the caller ignores, such as
// a job started with `&` from a script, stays ignored), then back to what they were. With
// `restart` off, a blocking call the signal interrupts returns EINTR, so a wait can look at the
// handler's flag.
class InterruptHandlers {
 public:
  InterruptHandlers(void (*handler)(int), bool restart);
  ~InterruptHandlers();
  InterruptHandlers(const InterruptHandlers&) = delete;
  InterruptHandlers& operator=(const InterruptHandlers&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// Prints `line` on stderr (after a line break on a terminal, below a progress bar) and ends the
// process by `signal` with its default action restored, so that the shell sees a program stopped
// by Ctrl-C (status 130; SIGTERM 143) and a `for` loop of commands stops too.
[[noreturn]] void end_by_signal(int signal, const std::string& line);

}  // namespace tailor::cli
