#include "sweep/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace fs = std::filesystem;

namespace {

// Starts `exe train ...` for one trial, its output going to DIR/train.log. The child dies with
// the sweep (PR_SET_PDEATHSIG), so a killed sweep leaves no orphan writing into a trial.
// A resumed trial's output is appended to the log of its earlier attempts.
pid_t spawn(const std::string& exe, const std::vector<std::string>& args, const std::string& log, bool resume) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw Error("cannot start a trial: fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string duration(double s) {
  if (s < 90) return fmt::format("{:.0f}s", s);
  if (s < 5400) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::fmod(s / 60, 60));
}

// A trial's stop_reason from its summary.json; empty when there is none or it cannot be read
// (then the trial has not finished and runs again).
std::string trial_stop_reason(const std::string& dir) {
  try {
    return nlohmann::json::parse(read_file(dir + "/summary.json")).value("stop_reason", "");
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

SweepOutcome run_sweep(const SweepSpec& spec, const RunOptions& opt) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  ensure_writable_dir(spec.out + "/trials");

  // The manifest: every trial of the sweep, what `report` reads.
  nlohmann::json manifest{{"name", spec.name}, {"file", spec.path}, {"trials", nlohmann::json::array()}};
  std::vector<const TrialSpec*> todo;
  std::set<std::string> seen;
  SweepOutcome out;
  for (const TrialSpec& t : spec.trials) {
    if (!seen.insert(t.id()).second) continue;  // the same configuration twice runs once
    manifest["trials"].push_back({{"id", t.id()}, {"row", t.row}, {"seed", t.seed}, {"group", t.group_key()},
                                  {"args", t.args()}});
    ++out.total;
    const std::string dir = spec.out + "/trials/" + t.id();
    const std::string stop = fs::exists(dir + "/" + kResumeStateFile) ? "" : trial_stop_reason(dir);
    if (stop.empty()) {
      todo.push_back(&t);
    } else if (stop == "diverged") {
      ++out.failed;  // recorded as diverged: not rerun, and the sweep fails as it did the first time
      ++out.diverged;
    } else {
      ++out.skipped;
    }
  }
  write_file_atomic(spec.out + "/sweep.json", manifest.dump(2) + "\n");

  const bool bar = opt.progress == "bar" || (opt.progress == "auto" && isatty(fileno(stderr)));
  std::map<pid_t, std::pair<const TrialSpec*, Clock::time_point>> running;
  size_t next = 0;
  double busy_seconds = 0;
  auto report = [&](const std::string& event) {
    const int done = out.skipped + out.ran + out.failed;
    const int left = out.total - done;
    std::string eta = "?";
    if (out.ran + out.failed > 0)
      eta = duration(busy_seconds / (out.ran + out.failed) * left / std::max(1, opt.jobs));
    const std::string line = fmt::format("sweep {}: {}/{} done ({} skipped, {} failed), {} running, ETA {}", spec.name,
                                         done, out.total, out.skipped, out.failed, running.size(), eta);
    if (bar) std::fprintf(stderr, "\r\033[K%s", line.c_str());
    else if (opt.progress != "none") std::fprintf(stderr, "%s%s\n", line.c_str(), event.c_str());
  };
  report("");
  // A finished trial is reported once its successor has started, so "running" counts what runs.
  std::string finished;
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && static_cast<int>(running.size()) < opt.jobs) {
      const TrialSpec& t = *todo[next++];
      const std::string dir = spec.out + "/trials/" + t.id();
      fs::create_directories(dir);
      // A trial killed mid-run continues from its last finished epoch with its saved settings.
      const bool resume = fs::exists(dir + "/" + kResumeStateFile) && fs::exists(dir + "/config.toml");
      std::vector<std::string> args{"train"};
      if (resume) {
        args.insert(args.end(), {"--resume", dir, "--threads", std::to_string(opt.threads_per_job), "--progress", "lines"});
        ++out.resumed;
      } else {
        for (auto& a : t.args()) args.push_back(a);
        for (auto& a : std::vector<std::string>{"--seed", std::to_string(t.seed), "--threads",
                                                std::to_string(opt.threads_per_job), "--out", dir, "--progress", "lines"})
          args.push_back(a);
        if (!opt.data_dir.empty()) args.insert(args.end(), {"--data", opt.data_dir});
      }
      running[spawn(opt.exe, args, dir + "/train.log", resume)] = {&t, Clock::now()};
      if (bar && finished.empty()) report("");
    }
    if (!finished.empty()) {
      report(finished);
      finished.clear();
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const TrialSpec& t = *it->second.first;
    busy_seconds += std::chrono::duration<double>(Clock::now() - it->second.second).count();
    running.erase(it);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ok ? ++out.ran : ++out.failed;
    finished = ok ? fmt::format(" - finished {} (seed {})", t.row, t.seed)
                  : fmt::format(" - FAILED {} (seed {}): see {}/trials/{}/train.log", t.row, t.seed, spec.out, t.id());
  }
  if (!finished.empty()) report(finished);
  if (bar) std::fprintf(stderr, "\n");
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

}  // namespace tailor
