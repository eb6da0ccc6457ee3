// `tailor sweep FILE` and `tailor report DIR`.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "dist/mpi.hpp"
#include "report/figures.hpp"
#include "report/html_report.hpp"
#include "sweep/results.hpp"
#include "sweep/runner.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/dir_lock.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find the tailor binary to run trials: " + ec.message());
  return p.string();
}

// Ctrl-C and SIGTERM: the first stops the sweep between trials (runner.hpp, RunOptions::stop),
// a second ends the process at once. A signal handler can only reach a flag.
std::atomic<int> g_interrupt{0};

extern "C" void on_sweep_interrupt(int signal) {
  if (g_interrupt.exchange(signal) != 0) ::_exit(128 + signal);
}

// Keeps the trials of the rows named; a name the file does not have is refused with its row names.
// Trial ids hash the options and the seed, so a sweep run by rows continues into the whole one.
void keep_rows(SweepSpec& spec, const std::vector<std::string>& names) {
  std::vector<std::string> known;
  for (const TrialSpec& t : spec.trials)
    if (std::find(known.begin(), known.end(), t.row_name) == known.end()) known.push_back(t.row_name);
  for (const std::string& n : names)
    if (std::find(known.begin(), known.end(), n) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "'" : ", '") + k + "'";
      throw Error("--row '" + n + "': " + spec.path + " has no row of that name; its rows: " + list);
    }
  std::erase_if(spec.trials, [&](const TrialSpec& t) {
    return std::find(names.begin(), names.end(), t.row_name) == names.end();
  });
}

struct SweepArgs {
  std::string file, out, data, progress = "auto";
  std::vector<std::string> rows;
  int jobs = 1, threads_per_job = 0, seeds = 0;
  bool dry_run = false;
};

}  // namespace

Run add_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* c = app.add_subcommand("sweep", "Run every trial of a sweep file (resumable, in parallel; under mpirun "
                                            "over the ranks) and write its results table");
  c->add_option("file", a->file, "Sweep file (TOML; see experiments/ and docs/sweeps.md)")->required();
  c->add_option("--jobs", a->jobs, "Trials run at once (under mpirun: one per rank, and this is ignored)")->check(CLI::Range(1, 256))->capture_default_str();
  c->add_option("--threads-per-job", a->threads_per_job, "Threads of each trial (0: cores / jobs)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  c->add_option("--seeds", a->seeds, "Run seeds 1..N instead of the file's seeds")->check(CLI::Range(1, 1000));
  c->add_option("--row", a->rows,
                "Run only this row (its name in the file; repeat it, or separate names by commas, for several): "
                "e.g. a few members of a search's best.toml")
      ->allow_extra_args(false)  // one name (or comma list) per --row: the sweep file stays positional
      ->delimiter(',');
  c->add_option("--out", a->out, "Sweep directory (default: the file's out, or runs/<name>)");
  c->add_option("--data", a->data, "Data directory for every trial (default: train's)");
  c->add_flag("--dry-run", a->dry_run, "List the trials (id, row, seed, train options) and stop");
  c->add_option("--progress", a->progress, "auto, bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();
  return [a, c]() {
    if (!c->parsed()) return -1;
    SweepSpec spec = read_sweep(a->file, train_option_table(), check_train_option);
    if (a->seeds > 0) {
      const uint64_t points = spec.trials.size() / spec.seeds.size();
      if (points * static_cast<uint64_t>(a->seeds) > kMaxSweepTrials)
        throw Error("--seeds " + std::to_string(a->seeds) + " makes " + std::to_string(points * a->seeds) + " trials of " +
                    a->file + ", more than the " + std::to_string(kMaxSweepTrials) + " a sweep may have");
      std::vector<TrialSpec> trials;
      for (const TrialSpec& t : spec.trials)
        if (t.seed == spec.seeds.front())
          for (int s = 1; s <= a->seeds; ++s) {
            trials.push_back(t);
            trials.back().seed = static_cast<uint64_t>(s);
          }
      spec.trials = std::move(trials);
      resolve_teachers(spec);  // each new seed's teacher
    }
    // After --seeds: a row kept may learn from one left out (whose trials then run in no phase
    // of this sweep, but finished ones are found in OUT/trials).
    if (!a->rows.empty()) keep_rows(spec, a->rows);
    if (!a->out.empty()) spec.out = a->out;
    const bool distributed = dist::size() > 1;
    if (distributed && dist::rank() > 0 && a->dry_run) return 0;  // rank 0 lists them
    if (a->dry_run) {
      for (const TrialSpec& t : spec.trials) {
        std::string args;
        for (const auto& x : t.args()) args += " " + x;
        std::printf("%s  %-40s seed %llu:%s\n", t.id().c_str(), t.row.c_str(), static_cast<unsigned long long>(t.seed),
                    args.c_str());
      }
      std::printf("%zu trials; results would go to %s\n", spec.trials.size(), spec.out.c_str());
      return 0;
    }
    DirLock lock;  // one sweep writes into its directory at a time (each trial holds its own)
    if (!distributed || dist::rank() == 0) {
      lock = DirLock(spec.out, "sweep directory");
      // Kept beside the results, so that `tailor report` redraws the figure without the sweep file;
      // a sweep file that no longer names any takes the old ones out of the figure.
      if (!spec.references.empty()) {
        write_file_atomic(spec.out + "/references.csv", spec.references);
      } else {
        std::error_code ec;
        std::filesystem::remove(spec.out + "/references.csv", ec);
      }
    }
    RunOptions opt;
    opt.exe = self_exe();
    // Under mpirun every rank runs one trial at a time: the ranks on one machine share its cores.
    opt.jobs = distributed ? dist::size() : a->jobs;
    const int sharing = distributed ? dist::local_size() : a->jobs;
    opt.threads_per_job = a->threads_per_job > 0 ? resolve_threads(a->threads_per_job, "--threads-per-job")
                                                 : std::max(1, available_cores() / sharing);
    opt.data_dir = a->data;
    opt.progress = a->progress;
    SweepOutcome r;
    {
      // Under mpirun the ranks would have to agree: the signals keep their default action there.
      // Without SA_RESTART: the runner's wait for a trial returns to look at the flag.
      std::optional<InterruptHandlers> handlers;
      if (!distributed) {
        g_interrupt.store(0);
        handlers.emplace(on_sweep_interrupt, false);
        opt.stop = &g_interrupt;
      }
      r = run_sweep(spec, opt);
    }
    if (distributed && dist::rank() > 0) return 0;  // rank 0 writes the results
    write_html_report(spec.out, write_results_table(spec.out, study_table1_csv()));
    write_sweep_figures(spec.out);
    if (r.stopped_by != 0) {
      // What is done is written; the process then ends by the signal, as `tailor train` does.
      lock = DirLock();
      end_by_signal(r.stopped_by,
                    fmt::format("tailor: sweep {} interrupted: {} of {} trials done, {} stopped at their last finished "
                                "epoch; results so far in {}/table.md; continue with tailor sweep {} --out {}",
                                spec.name, r.skipped + r.ran + r.failed, r.total, r.interrupted, spec.out, a->file,
                                spec.out));
    }
    std::printf("sweep %s: %d trials (%d already done, %d ran, %d failed; %d resumed from their last epoch, %d "
                "recorded as diverged earlier) in %.1f s wall time\n",
                spec.name.c_str(), r.total, r.skipped, r.ran, r.failed, r.resumed, r.diverged, r.seconds);
    std::printf("results: %s/table.md, table.csv, report.html and figures/*.png\n", spec.out.c_str());
    return r.failed ? 1 : 0;
  };
}

Run add_report(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("report", "Write the results table (table.md, table.csv), report.html and the PNG "
                                             "figures of a sweep directory, or the curves.png of one run");
  c->add_option("dir", *dir, "Sweep directory (holds sweep.json) or run directory (holds metrics.csv)")->required();
  return [dir, c]() {
    if (!c->parsed()) return -1;
    if (!std::filesystem::exists(*dir + "/sweep.json") && std::filesystem::exists(*dir + "/metrics.csv")) {
      const std::string config = *dir + "/config.toml";
      const std::string title = std::filesystem::exists(config) ? run_title(config_from_toml(read_file(config), config))
                                                                : std::filesystem::path(*dir).filename().string();
      write_run_curves(*dir, title);
      std::printf("written: %s/curves.png (training loss, validation and test accuracy by epoch)\n", dir->c_str());
      return 0;
    }
    const std::string md = write_results_table(*dir, study_table1_csv());
    write_html_report(*dir, md);
    const int figures = write_sweep_figures(*dir);
    std::printf("%s", md.c_str());
    std::printf("\nwritten: %s/table.md, table.csv, report.html and %d PNG figures (figures/, trials/*/)\n",
                dir->c_str(), figures);
    return 0;
  };
}

}  // namespace tailor::cli
