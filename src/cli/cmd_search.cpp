// `tailor search SPACE.toml`: multi-objective asynchronous successive halving (search/search.hpp).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "dist/mpi.hpp"
#include "search/search.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {

struct SearchArgs {
  std::string file, out, data, time, progress = "auto", schedule, sampler;
  int jobs = 1, threads_per_job = 0;
  int64_t trials = -1, seed = -1;
};

// Ctrl-C and SIGTERM: the first lets the trials under way finish their epoch, then every output
// is written; the second stops them at their next step (the epoch under way is dropped; the
// outputs are still written); a third ends the process at once. A handler can only reach flags.
std::atomic<int> g_soft_stop{0}, g_hard_stop{0};

extern "C" void on_search_interrupt(int signal) {
  if (g_soft_stop.exchange(signal) == 0) return;
  if (g_hard_stop.exchange(signal) == 0) return;
  ::_exit(128 + signal);
}

}  // namespace

// "45m", "2h", "90s", "1h30m" or a number of seconds; throws naming --time.
double parse_duration(const std::string& text) {
  if (text.empty()) throw Error("--time: empty value (say 45m, 2h, 90s or 1h30m)");
  double total = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(text.substr(at), &used);
    } catch (const std::exception&) {
      throw Error("--time: '" + text + "' is not a duration (say 45m, 2h, 90s or 1h30m)");
    }
    if (!std::isfinite(v) || v < 0 || text[at] == '-')
      throw Error("--time: '" + text + "' is negative or not finite; give a duration such as 45m");
    at += used;
    double unit = 1;
    if (at < text.size()) {
      const char u = text[at++];
      unit = u == 'h' ? 3600 : u == 'm' ? 60 : u == 's' ? 1 : -1;
      if (unit < 0) throw Error("--time: '" + text + "' has an unknown unit '" + std::string(1, u) + "' (h, m or s)");
    }
    total += v * unit;
  }
  if (total <= 0) throw Error("--time: '" + text + "' is no time at all; give a duration such as 45m");
  return total;
}

namespace {

// search's options, declared on `app`'s subcommand "search": what the program and the library
// (search_setup_from_flags) both read.
CLI::App* declare_search(CLI::App& app, SearchArgs* a) {
  CLI::App* c = app.add_subcommand(
      "search", "Search a space of train options for the best validation accuracy (and fewest weights, MFLOPs or "
                "seconds): asynchronous successive halving with several objectives, TPE sampling, resumable after "
                "any stop; under mpirun the ranks are its workers (docs/search.md)");
  c->add_option("file", a->file, "Search space file (TOML; see experiments/search/ and docs/search.md)")->required();
  c->add_option("--out", a->out, "Search directory (default: the file's out, or runs/search-<name>)");
  c->add_option("--jobs", a->jobs, "Trials trained at once (under mpirun: one per rank, and this is ignored)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  c->add_option("--threads-per-job", a->threads_per_job, "Threads of each trial (0: cores / jobs)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  c->add_option("--time", a->time,
                "Wall time this run may take, e.g. 30m, 2h, 1h30m or 90 (seconds); then the trials under way finish "
                "their epoch, every output is written, and the same command continues later");
  c->add_option("--trials", a->trials, "Trials sampled at most (default: the file's trials; 0: no limit, until --time)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  c->add_option("--seed", a->seed, "The sampler's seed and every trial's --seed, instead of the file's")
      ->check(CLI::Range(int64_t{0}, INT64_MAX));
  c->add_option("--schedule", a->schedule,
                "asha or none, instead of the file's [schedule] kind (none: every trial to max-epochs; with "
                "--sampler random, plain random search to compare against)")
      ->check(CLI::IsMember({"asha", "none"}));
  c->add_option("--sampler", a->sampler, "tpe or random, instead of the file's [sampler] kind")
      ->check(CLI::IsMember({"tpe", "random"}));
  c->add_option("--data", a->data, "Data directory for every trial (default: [base]'s data, or train's)");
  c->add_option("--progress", a->progress, "auto (a line kept up to date on a terminal), bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();
  return c;
}

}  // namespace

namespace {

// The space file read and the flags applied and checked.
SearchSetup search_setup(const SearchArgs& args) {
  const SearchArgs* a = &args;
  SearchOptions opt;
  if (!a->time.empty()) opt.time_limit = parse_duration(a->time);
  SearchSpace space = read_space(a->file, train_option_table(), check_train_option);
  if (!a->out.empty()) space.out = a->out;
  if (a->seed >= 0) space.seed = static_cast<uint64_t>(a->seed);
  if (!a->schedule.empty()) {
    space.asha = a->schedule == "asha";
    if (space.asha && space.min_epochs >= space.max_epochs)
      throw Error(fmt::format("--schedule asha needs min-epochs ({}) below max-epochs ({}) in {}", space.min_epochs,
                              space.max_epochs, a->file));
  }
  if (!a->sampler.empty()) space.tpe = a->sampler == "tpe";
  if (a->trials >= 0) opt.trials = a->trials;
  if ((opt.trials >= 0 ? opt.trials : space.trials) == 0 && opt.time_limit <= 0)
    throw Error(a->file + " sets no limit of trials and no --time was given: the search would never end; give --trials N "
                          "or --time 30m");
  const bool distributed = dist::size() > 1;
  opt.jobs = a->jobs;
  const int sharing = distributed ? dist::local_size() : a->jobs;
  opt.threads_per_job = a->threads_per_job > 0 ? resolve_threads(a->threads_per_job, "--threads-per-job")
                                               : std::max(1, available_cores() / sharing);
  opt.data_dir = a->data;
  opt.progress = a->progress;
  return {std::move(space), std::move(opt)};
}

}  // namespace

SearchSetup search_setup_from_flags(const std::string& file, const std::vector<std::pair<std::string, std::string>>& flags) {
  CLI::App app;
  SearchArgs a;
  CLI::App* c = declare_search(app, &a);
  parse_named_options(app, c, {"search", file}, flags, "search");
  return search_setup(a);
}

Run add_search(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  CLI::App* c = declare_search(app, a.get());
  return [a, c]() {
    if (!c->parsed()) return -1;
    auto [space, opt] = search_setup(*a);
    const bool distributed = dist::size() > 1;
    SearchOutcome r;
    {
      std::optional<InterruptHandlers> handlers;
      if (!distributed) {  // under mpirun the ranks would have to agree: default actions there
        g_soft_stop.store(0);
        g_hard_stop.store(0);
        handlers.emplace(on_search_interrupt, true);
        opt.soft_stop = &g_soft_stop;
        opt.hard_stop = &g_hard_stop;
      }
      r = run_search(space, opt, train_config_from_options);
    }
    if (distributed && dist::rank() > 0) return 0;
    const std::string again = fmt::format("tailor search {} --out {}", a->file, space.out);
    const std::string head = fmt::format(
        "search {}: {} trials ({} finished, {} pruned, {} failed); {} epochs trained in {:.0f} s{}", space.name, r.trials,
        r.finished, r.pruned, r.failed, r.epochs_run, r.seconds,
        r.epochs_recovered ? fmt::format(", {} recovered from an earlier run", r.epochs_recovered) : std::string());
    if (r.stopped_by > 0) {
      std::printf("%s\n%s", head.c_str(), r.summary.c_str());
      std::fflush(stdout);
      end_by_signal(r.stopped_by, fmt::format("tailor: search {} interrupted; every output is written; continue with {}",
                                              space.name, again));
    }
    std::printf("%s%s\n%s", head.c_str(),
                r.complete ? "; complete" : r.timed_out ? fmt::format("; --time ran out: continue with {}", again).c_str() : "",
                r.summary.c_str());
    return 0;
  };
}

}  // namespace tailor::cli
