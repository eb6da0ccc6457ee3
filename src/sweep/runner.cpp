#include "sweep/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dist/mpi.hpp"
#include "nn/model_spec.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace fs = std::filesystem;

namespace {

// Starts `exe train ...` for one trial, its output going to DIR/train.log. The child dies with
// the sweep (PR_SET_PDEATHSIG), so a killed sweep leaves no orphan writing into a trial.
// A resumed trial's output is appended to the log of its earlier attempts.
// The child's environment: this process's, plus TAILOR_NO_MPI=1, so that a trial started by an
// MPI rank (which inherits the launcher's variables) runs as a plain local process.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "TAILOR_NO_MPI=", 14) != 0) env.emplace_back(*e);
  env.emplace_back("TAILOR_NO_MPI=1");
  return env;
}

pid_t spawn(const std::string& exe, const std::vector<std::string>& args, const std::string& log, bool resume) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Built before fork: between fork and exec the child calls only async-signal-safe functions.
  static const std::vector<std::string> env = child_environment();
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
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
    execve(exe.c_str(), argv.data(), envp.data());
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

// `train` arguments for one trial: continued with --resume when it was killed mid-run (its
// saved settings), else its own options; its output goes to the trial directory either way.
std::vector<std::string> trial_args(const SweepSpec& spec, const std::string& dir, const TrialSpec& t,
                                    const RunOptions& opt, bool resume) {
  std::vector<std::string> args{"train"};
  if (resume) {
    args.insert(args.end(), {"--resume", dir, "--threads", std::to_string(opt.threads_per_job), "--progress", "lines"});
    return args;
  }
  for (auto& a : t.args()) args.push_back(a);
  // teacher = "row:NAME": that row's trial of this seed (a teacher that failed fails this trial,
  // its train.log saying that the teacher's model.ckpt is missing).
  if (!t.teacher_id.empty())
    for (size_t i = 1; i + 1 < args.size(); ++i)
      if (args[i] == "--teacher") args[i + 1] = spec.out + "/trials/" + t.teacher_id;
  for (auto& a : std::vector<std::string>{"--seed", std::to_string(t.seed), "--threads", std::to_string(opt.threads_per_job),
                                          "--out", dir, "--progress", "lines"})
    args.push_back(a);
  if (!opt.data_dir.empty()) args.insert(args.end(), {"--data", opt.data_dir});
  return args;
}

// Starts one trial in its directory; `resumed` says whether it continues an interrupted one.
pid_t start_trial(const SweepSpec& spec, const TrialSpec& t, const RunOptions& opt, bool& resumed) {
  const std::string dir = spec.out + "/trials/" + t.id();
  fs::create_directories(dir);
  resumed = fs::exists(dir + "/" + kResumeStateFile) && fs::exists(dir + "/config.toml");
  return spawn(opt.exe, trial_args(spec, dir, t, opt, resumed), dir + "/train.log", resumed);
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
// A trial that stopped on SIGINT or SIGTERM (by the signal, or saying so by its exit status).
bool exited_interrupted(int status) {
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : WIFEXITED(status) ? WEXITSTATUS(status) - 128 : 0;
  return sig == SIGINT || sig == SIGTERM;
}

// What a trial is expected to cost, to hand out the largest first: epochs x the forward FLOPs of
// its model, sized as `train` sizes it (28x28 inputs assumed; only the order matters).
double expected_cost(const TrialSpec& t) {
  const auto widths = [](const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
    return out;
  };
  try {
    const std::string* model = t.get("model");
    ModelSpec s = default_spec(parse_family(model ? *model : "cnn"));
    const std::string *hidden = t.get("hidden"), *channels = t.get("channels"), *weights = t.get("weights");
    const std::string* arch = t.get("arch");
    if (hidden) s.hidden = *hidden == "none" ? std::vector<int64_t>{} : widths(*hidden);
    if (channels && s.family == Family::cnn) s.channels = widths(*channels);
    if (arch) parse_arch(*arch, s);
    if (weights || (!hidden && !channels && !arch)) s = fit_to_budget(s, weights ? parse_weight_count(*weights) : 100000);
    const std::string* epochs = t.get("epochs");
    return (epochs ? std::stod(*epochs) : 10.0) * forward_flops(s);
  } catch (const std::exception&) {
    return 0;  // the trial itself will say what is wrong with it
  }
}

constexpr int kTagReady = 1, kTagWork = 2;

// A rank other than 0: asks rank 0 for trials, runs each as a local trial would, reports back.
void sweep_worker(const SweepSpec& spec, const RunOptions& opt) {
  std::vector<int64_t> msg{-1, 0, 0};
  for (;;) {
    dist::send(0, kTagReady, msg);
    std::vector<int64_t> work;
    dist::receive(kTagWork, work);
    if (work.empty() || work[0] < 0) return;
    const TrialSpec& t = spec.trials.at(static_cast<size_t>(work[0]));
    bool resumed = false;
    const pid_t pid = start_trial(spec, t, opt, resumed);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    msg = {work[0], exited_ok(status) ? 1 : 0, resumed ? 1 : 0};
  }
}

}  // namespace

SweepOutcome run_sweep(const SweepSpec& spec, const RunOptions& opt) {
  if (dist::size() > 1 && dist::rank() > 0) {
    sweep_worker(spec, opt);
    return {};
  }
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
  // Trials that learn from another row's (teacher = "row:NAME") run last, once every other trial
  // has ended: `phase` is the first of them in `todo`, and none starts while a trial before it runs.
  const size_t phase = static_cast<size_t>(
      std::stable_partition(todo.begin(), todo.end(), [](const TrialSpec* t) { return t->teacher_id.empty(); }) -
      todo.begin());

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
  const auto record = [&](const TrialSpec& t, bool ok, Clock::time_point started) {
    busy_seconds += std::chrono::duration<double>(Clock::now() - started).count();
    ok ? ++out.ran : ++out.failed;
    finished = ok ? fmt::format(" - finished {} (seed {})", t.row, t.seed)
                  : fmt::format(" - FAILED {} (seed {}): see {}/trials/{}/train.log", t.row, t.seed, spec.out, t.id());
  };
  // Stopping (opt.stop): when it was seen, and whether the trials still running were sent SIGINT.
  std::optional<Clock::time_point> stop_seen;
  bool forwarded = false;
  // Whether the next trial of `todo` may start now.
  const auto startable = [&] {
    if (next >= todo.size()) return false;
    if (next < phase) return true;
    for (const auto& [pid, trial] : running)
      if (trial.first->teacher_id.empty()) return false;  // a teacher may still be training
    return true;
  };
  if (dist::size() > 1) {
    // Rank 0 under MPI: runs trials itself, one at a time, and hands the others out to ranks as
    // they ask, largest expected cost first; a rank asks again when its trial ends.
    const auto costlier = [](const TrialSpec* a, const TrialSpec* b) { return expected_cost(*a) > expected_cost(*b); };
    std::stable_sort(todo.begin(), todo.begin() + static_cast<std::ptrdiff_t>(phase), costlier);
    std::stable_sort(todo.begin() + static_cast<std::ptrdiff_t>(phase), todo.end(), costlier);
    std::vector<int> waiting;  // ranks that asked while the trials left had to wait for their teachers
    pid_t local = -1;  // rank 0's own trial; `running` holds it by pid and the ranks' by minus their rank
    int workers = dist::size() - 1;
    const auto index_of = [&](const TrialSpec* t) { return static_cast<int64_t>(t - spec.trials.data()); };
    while (local >= 0 || workers > 0 || next < todo.size()) {
      if (local < 0 && startable()) {
        const TrialSpec* t = todo[next++];
        bool resumed = false;
        local = start_trial(spec, *t, opt, resumed);
        out.resumed += resumed;
        running[local] = {t, Clock::now()};
      }
      while (dist::message_waiting(kTagReady)) {
        std::vector<int64_t> msg;
        const int from = dist::receive(kTagReady, msg);
        if (msg.size() == 3 && msg[0] >= 0 && running.count(-from)) {
          out.resumed += msg[2] != 0;
          record(*running[-from].first, msg[1] != 0, running[-from].second);
          running.erase(-from);
        }
        waiting.push_back(from);
      }
      // Each waiting rank gets a trial that may start, or is told to end once none is left.
      while (!waiting.empty() && (startable() || next >= todo.size())) {
        const int to = waiting.front();
        waiting.erase(waiting.begin());
        if (next < todo.size()) {
          running[-to] = {todo[next], Clock::now()};
          dist::send(to, kTagWork, {index_of(todo[next++])});
        } else {
          dist::send(to, kTagWork, {-1});
          --workers;
        }
      }
      // Reported here, after the rank that finished has its next trial: "running" counts what runs.
      if (!finished.empty()) {
        report(finished);
        finished.clear();
      }
      if (local >= 0) {
        int status = 0;
        if (waitpid(local, &status, WNOHANG) == local) {
          record(*running[local].first, exited_ok(status), running[local].second);
          running.erase(local);
          local = -1;
          continue;  // start the next one at once
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const auto notice_stop = [&] {
    if (!stop_seen && opt.stop && (out.stopped_by = opt.stop->load()) != 0) stop_seen = Clock::now();
  };
  while (next < todo.size() || !running.empty()) {
    notice_stop();
    while (!stop_seen && startable() && static_cast<int>(running.size()) < opt.jobs) {
      const TrialSpec& t = *todo[next++];
      bool resumed = false;
      const pid_t pid = start_trial(spec, t, opt, resumed);
      out.resumed += resumed;
      running[pid] = {&t, Clock::now()};
      if (bar && finished.empty()) report("");
    }
    if (!finished.empty()) {
      report(finished);
      finished.clear();
    }
    if (running.empty()) break;
    int status = 0;
    // Waiting is interrupted by the signal that sets opt.stop (its handler has no SA_RESTART).
    const pid_t pid = waitpid(-1, &status, stop_seen ? WNOHANG : 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    if (pid == 0) {  // stopping, and no trial has ended yet
      if (!forwarded && Clock::now() - *stop_seen > std::chrono::seconds(2)) {
        for (const auto& [child, trial] : running) ::kill(child, SIGINT);
        forwarded = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    // The signal may have come after the check above and before a blocking wait: a trial it
    // stopped must count as stopped, not failed.
    notice_stop();
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const TrialSpec& t = *it->second.first;
    const Clock::time_point started = it->second.second;
    running.erase(it);
    if (stop_seen && exited_interrupted(status)) {
      ++out.interrupted;
      finished = fmt::format(" - stopped {} (seed {}) at its last finished epoch", t.row, t.seed);
      continue;
    }
    record(t, exited_ok(status), started);
  }
  if (!finished.empty()) report(finished);
  if (bar) std::fprintf(stderr, "\n");
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

}  // namespace tailor
