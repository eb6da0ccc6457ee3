#include "search/search.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <csignal>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "dist/mpi.hpp"
#include "kernels/kernels.hpp"
#include "nn/model_spec.hpp"
#include "search/journal.hpp"
#include "search/sampler.hpp"
#include "search/trials.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/run_state.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/dir_lock.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Options = std::vector<std::pair<std::string, std::string>>;

// Thrown from the epoch callback to pause a trial at its rung (or at a soft stop): the trainer
// keeps the resume state of the epoch just finished.
struct PauseHere {};

struct Job {
  int64_t trial = -1;
  bool resume = false;
  int64_t target = 0;
};

// metrics.csv text -> (epoch, val_acc, val_loss, epoch_seconds) rows.
std::vector<std::pair<int64_t, EpochRec>> metric_rows(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> head;
  {
    std::stringstream h(line);
    for (std::string c; std::getline(h, c, ',');) head.push_back(c);
  }
  auto col = [&](const char* c) {
    auto it = std::find(head.begin(), head.end(), c);
    if (it == head.end()) throw Error(name + ": no " + std::string(c) + " column");
    return static_cast<size_t>(it - head.begin());
  };
  const size_t ce = col("epoch"), ca = col("val_acc"), cl = col("val_loss"), cs = col("epoch_seconds");
  std::vector<std::pair<int64_t, EpochRec>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream r(line);
    for (std::string c; std::getline(r, c, ',');) f.push_back(c);
    if (f.size() < head.size()) throw Error(name + ": a short row: " + line);
    const auto number = [&](size_t c) {
      try {
        return f[c].empty() ? std::nan("") : std::stod(f[c]);
      } catch (const std::exception&) {
        throw Error(name + ": not a number in row '" + line + "'");
      }
    };
    EpochRec e;
    e.val_acc = number(ca);
    e.val_loss = number(cl);
    e.seconds = number(cs);
    rows.emplace_back(static_cast<int64_t>(number(ce)), e);
  }
  return rows;
}

std::string clock_text(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds));
  return s >= 3600 ? fmt::format("{}h{:02d}m", s / 3600, (s / 60) % 60) : fmt::format("{}m{:02d}s", s / 60, s % 60);
}

// Messages between rank 0 and the other ranks (dist::send and receive carry integers).
constexpr int kTagToRoot = 711, kTagJob = 712;
enum Msg : int64_t { kAsk = 0, kEpoch = 1, kEnd = 2 };
enum End : int64_t { kPaused = 0, kFinished = 1, kFailed = 2 };
int64_t bits(double v) { return std::bit_cast<int64_t>(v); }
double from_bits(int64_t v) { return std::bit_cast<double>(v); }

// One job of one trial, on this process: trains or continues it to `target` epochs, calling
// `on_epoch` after each, and says how it ended (kFinished, kFailed with `error`, or kPaused: at
// its target, or stopped early by a stop).
End run_job(const std::string& dir, const Job& job, int64_t max_epochs, const TrainConfig* fresh, const TrainTestData& data,
            const std::atomic<int>* hard_stop, const std::function<bool()>& soft_stop,
            const std::function<void(const EpochReport&)>& on_epoch, std::string& error) {
  TrainControl c;
  c.data = &data;
  c.local = true;
  c.evaluate_test = false;
  c.stop = hard_stop;
  c.on_epoch = [&](const EpochReport& e) {
    on_epoch(e);
    if (e.epoch < max_epochs && (e.epoch >= job.target || soft_stop())) throw PauseHere{};
    return true;
  };
  try {
    if (job.resume) {
      const std::string path = dir + "/config.toml";
      TrainConfig cfg = config_from_toml(read_file(path), path);
      cfg.out_dir = dir;  // where it is now (a search directory may have been moved)
      cfg.progress = "none";
      resume_training(cfg, c);
    } else {
      train(*fresh, c);
    }
    return kFinished;
  } catch (const PauseHere&) {
    return kPaused;
  } catch (const Interrupted&) {
    return kPaused;
  } catch (const std::exception& e) {
    error = e.what();
    return kFailed;
  }
}

class Engine {
 public:
  Engine(const SearchSpace& s, const SearchOptions& o, const ConfigMaker& make)
      : s_(s), o_(o), make_(make), rungs_(s.rungs()), limit_(o.trials >= 0 ? o.trials : s.trials) {}

  SearchOutcome run();
  void work_remote();  // a rank other than 0 under mpirun

 private:
  std::string trial_dir(int64_t id) const { return fmt::format("{}/trials/{:04d}", s_.out, id); }
  double now() const { return t_offset_ + std::chrono::duration<double>(Clock::now() - start_).count(); }
  bool soft() const { return soft_.load() != 0 || (o_.soft_stop && o_.soft_stop->load() != 0); }
  bool hard() const { return hard_.load() != 0; }
  // Reads the caller's stops into the engine's own flags (the trainings read `hard_`).
  void watch_stops() {
    if (o_.hard_stop && o_.hard_stop->load() && !hard_.load()) hard_.store(o_.hard_stop->load());
    if (o_.soft_stop && o_.soft_stop->load() && !stopped_by_) stopped_by_ = o_.soft_stop->load();
    if (o_.poll && Clock::now() - polled_ >= std::chrono::milliseconds(200)) {
      polled_ = Clock::now();
      if (const int v = o_.poll()) {
        if (!stopped_by_) {
          stopped_by_ = v;
          soft_.store(v);
        } else if (!hard_.load()) {
          hard_.store(v);
        }
      }
    }
    if (o_.hard_stop && o_.hard_stop->load() && !stopped_by_) stopped_by_ = o_.hard_stop->load();
  }
  int64_t max_epochs() const { return rungs_.back(); }

  Options options_for(const Point& p, const std::string& dir) const {
    Options out;
    for (const auto& kv : s_.base)
      if (kv.first != "data" || o_.data_dir.empty()) out.push_back(kv);  // --data wins over [base]'s
    for (const auto& kv : p) out.push_back(kv);
    out.emplace_back("seed", std::to_string(s_.seed));
    out.emplace_back("epochs", std::to_string(max_epochs()));
    out.emplace_back("threads", std::to_string(o_.threads_per_job));
    out.emplace_back("progress", "none");
    if (!o_.data_dir.empty()) out.emplace_back("data", o_.data_dir);
    if (!dir.empty()) out.emplace_back("out", dir);
    return out;
  }
  TrainConfig config_for(const Point& p, const std::string& dir) const { return make_(options_for(p, dir)); }
  // Sizes a point on the data's input; false (with the reason) when it breaks a constraint.
  bool size_point(const Point& p, int64_t& weights, double& mflops, std::string* why) const;
  std::vector<double> objectives(const Trial& t, int k) const { return trial_objectives(s_, rungs_, t, k); }
  SearchView view() const { return SearchView{s_, rungs_, trials_, o_.data_dir}; }
  std::vector<Point> tpe_history() const;
  Job sample();
  std::optional<Job> next_job();
  void start_job(Trial& t, int rank);
  void record_epoch(Trial& t, int64_t epoch, const EpochRec& e, bool recovered);
  void record_rungs(Trial& t);
  void job_ended(Trial& t, End end, const std::string& error);
  void replay(const std::vector<json>& records);
  void reconcile(Trial& t);
  void local_worker();
  void serve_ranks();
  std::string progress_line() const;
  std::vector<size_t> pareto_set() const { return tailor::pareto_set(view()); }
  void evaluate_pareto();

  const SearchSpace& s_;
  SearchOptions o_;
  const ConfigMaker& make_;
  std::vector<int64_t> rungs_;
  int64_t limit_;
  Journal journal_;
  TrainTestData data_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Trial> trials_;  // a deque: a running job keeps its reference while others sample
  std::deque<Job> pending_;  // trials an earlier run left in flight: continued first
  int running_ = 0;          // jobs under way, on any rank
  std::atomic<int> workers_left_{0};  // local worker threads still looking for work
  bool complete_ = false;    // nothing left: every trial sampled, nothing to promote
  std::string fatal_;
  std::atomic<int> soft_{0}, hard_{0};
  int stopped_by_ = 0;  // the signal (or poll's answer) that stopped the search
  Clock::time_point polled_{};
  bool timed_out_ = false;
  double t_offset_ = 0;
  Clock::time_point start_ = Clock::now();
  int64_t epochs_run_ = 0, epochs_recovered_ = 0;
};

bool Engine::size_point(const Point& p, int64_t& weights, double& mflops, std::string* why) const {
  ModelSpec spec;
  int64_t target = 0;
  try {
    TrainConfig cfg = config_for(p, "");
    spec = cfg.model;
    target = cfg.weights_target;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
  spec.in_channels = data_.train.channels;
  spec.height = data_.train.rows;
  spec.width = data_.train.cols;
  spec.classes = data_.train.num_classes;
  try {
    if (target > 0) spec = fit_to_budget(spec, target);
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
  weights = count_weights(spec);
  mflops = forward_flops(spec) / 1e6;
  for (const Constraint& c : s_.constraints) {
    const double v = c.metric == Metric::weights ? static_cast<double>(weights) : mflops;
    if (v > c.limit) {
      if (why) *why = fmt::format("{} {:.6g} breaks {}", metric_name(c.metric), v, c.text);
      return false;
    }
  }
  return true;
}

// The trials with a result, best first: those that went furthest first, each rung's by its
// ranking; then the failed (to steer the sampler away from them).
std::vector<Point> Engine::tpe_history() const {
  std::vector<Point> out;
  for (int k = static_cast<int>(rungs_.size()) - 1; k >= 0; --k) {
    std::vector<const Trial*> at;
    for (const Trial& t : trials_)
      if (t.rung == k && t.state != TrialState::failed) at.push_back(&t);
    std::vector<std::vector<double>> pts;
    for (const Trial* t : at) pts.push_back(objectives(*t, k));
    for (size_t i : rank_order(pts)) out.push_back(at[i]->point);
  }
  for (const Trial& t : trials_)
    if (t.state == TrialState::failed) out.push_back(t.point);
  return out;
}

Job Engine::sample() {
  const int64_t id = static_cast<int64_t>(trials_.size());
  Rng rng = Rng(s_.seed).split(static_cast<uint64_t>(id) + 1);
  const std::vector<Point> history = tpe_history();
  const bool model = s_.tpe && static_cast<int64_t>(history.size()) >= s_.startup;
  Trial t;
  t.id = id;
  std::string why;
  bool found = false;
  // Stratified choices take turns; should no point with them meet the constraints in 1,000 draws,
  // the rest are drawn freely.
  std::vector<Point> sampled;
  if (!s_.stratify.empty())
    for (const Trial& u : trials_) sampled.push_back(u.point);
  const Point fixed = stratified_values(s_, sampled);
  for (int attempt = 0; attempt < 2000 && !found; ++attempt) {
    const Point& with = attempt < 1000 ? fixed : Point{};
    t.point = model && attempt < 1000 ? sample_tpe(s_, history, rng, with) : sample_random(s_, rng, with);
    found = size_point(t.point, t.weights, t.mflops, &why);
  }
  if (!found) throw Error("no point of the space meets its constraints after 2000 draws (the last: " + why + ")");
  t.target = rungs_[0];
  journal_.append({{"type", "sample"}, {"trial", id}, {"point", t.point}, {"weights", t.weights}, {"mflops", t.mflops},
                   {"to", t.target}, {"sampler", model ? "tpe" : "random"}, {"t", now()}});
  trials_.push_back(std::move(t));
  return Job{id, false, rungs_[0]};
}

// ASHA: the highest rung with a trial in its top 1/eta not yet promoted gives the job; else a
// new trial; else nothing (until a running job reports).
std::optional<Job> Engine::next_job() {
  if (!pending_.empty()) {
    Job j = pending_.front();
    pending_.pop_front();
    return j;
  }
  for (int k = static_cast<int>(rungs_.size()) - 2; k >= 0; --k) {
    // Every result at rung k counts (a trial that failed later too), as in Li et al.'s ASHA.
    std::vector<Trial*> at;
    for (Trial& t : trials_)
      if (t.rung >= k) at.push_back(&t);
    std::vector<std::vector<double>> pts;
    for (const Trial* t : at) pts.push_back(objectives(*t, k));
    const std::vector<size_t> order = rank_order(pts);
    const size_t top = at.size() / static_cast<size_t>(s_.eta);
    for (size_t i = 0; i < top; ++i) {
      Trial& t = *at[order[i]];
      // `active`: its job is still unwinding from the pause at this rung.
      if (t.rung != k || t.state != TrialState::waiting || t.active || t.promoted.count(k)) continue;
      t.promoted.insert(k);
      t.pruned = false;
      t.target = rungs_[k + 1];
      t.state = TrialState::running;
      journal_.append({{"type", "promote"}, {"trial", t.id}, {"rung", k}, {"to", t.target}, {"t", now()}});
      return Job{t.id, true, t.target};
    }
  }
  if (limit_ == 0 || static_cast<int64_t>(trials_.size()) < limit_) return sample();
  return std::nullopt;
}

void Engine::record_epoch(Trial& t, int64_t epoch, const EpochRec& e, bool recovered) {
  if (t.epochs.count(epoch)) {  // known already (a recovered row seen again): its rung may not be
    record_rungs(t);
    return;
  }
  EpochRec r = e;
  r.t = now();
  t.epochs[epoch] = r;
  json rec{{"type", "epoch"}, {"trial", t.id}, {"epoch", epoch}, {"val_acc", r.val_acc}, {"val_loss", r.val_loss},
           {"seconds", r.seconds}, {"t", r.t}};
  if (recovered) rec["recovered"] = true;
  journal_.append(rec);
  (recovered ? epochs_recovered_ : epochs_run_) += 1;
  record_rungs(t);
}

void Engine::record_rungs(Trial& t) {
  for (int k = t.rung + 1; k < static_cast<int>(rungs_.size()); ++k) {
    const int64_t e = rungs_[k];
    if (e > t.target || !t.epochs.count(e)) break;
    t.rung = k;
    const EpochRec& r = t.epochs.at(e);
    journal_.append({{"type", "rung"}, {"trial", t.id}, {"rung", k}, {"epoch", e}, {"val_acc", r.val_acc},
                     {"val_loss", r.val_loss}, {"train_seconds", t.seconds_to(e)}, {"t", now()}});
    if (e == t.target && e < max_epochs()) t.state = TrialState::waiting;
  }
}

void Engine::job_ended(Trial& t, End end, const std::string& error) {
  t.active = false;
  if (end == kFinished) {
    t.state = TrialState::finished;
    journal_.append({{"type", "finish"}, {"trial", t.id}, {"epochs", t.last_epoch()}, {"t", now()}});
  } else if (end == kFailed) {
    t.state = TrialState::failed;
    t.error = error;
    journal_.append({{"type", "fail"}, {"trial", t.id}, {"error", error}, {"t", now()}});
  } else if (t.state == TrialState::running && t.last_epoch() < t.target) {
    // Stopped before its rung (Ctrl-C, --time): continued first by the next run.
    pending_.push_back(Job{t.id, true, t.target});
  }
}

void Engine::replay(const std::vector<json>& records) {
  for (size_t i = 1; i < records.size(); ++i) {
    const json& r = records[i];
    const std::string type = text_field(r, "type");
    try {
      t_offset_ = std::max(t_offset_, r.value("t", 0.0));
      if (type == "sample") {
        Trial t;
        t.id = r.at("trial").get<int64_t>();
        if (t.id != static_cast<int64_t>(trials_.size())) throw Error("trial numbers out of order");
        t.point = r.at("point").get<Point>();
        t.weights = r.at("weights").get<int64_t>();
        t.mflops = r.at("mflops").get<double>();
        t.target = r.at("to").get<int64_t>();
        trials_.push_back(std::move(t));
        continue;
      }
      const int64_t id = r.at("trial").get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(trials_.size())) throw Error("names trial " + std::to_string(id) + " before its sample");
      Trial& t = trials_[id];
      if (r.contains("rank")) t.ranks.insert(r.at("rank").get<int>());
      if (type == "promote") {
        t.promoted.insert(r.at("rung").get<int>());
        t.pruned = false;
        t.target = r.at("to").get<int64_t>();
        t.state = TrialState::running;
      } else if (type == "epoch") {
        EpochRec e;
        const auto number = [](const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
        e.val_acc = number(r.at("val_acc"));
        e.val_loss = number(r.at("val_loss"));
        e.seconds = r.at("seconds").get<double>();
        e.t = r.value("t", 0.0);
        t.epochs[r.at("epoch").get<int64_t>()] = e;
      } else if (type == "rung") {
        t.rung = std::max(t.rung, r.at("rung").get<int>());
        if (rungs_[t.rung] == t.target && t.target < max_epochs()) t.state = TrialState::waiting;
      } else if (type == "finish") {
        t.state = TrialState::finished;
      } else if (type == "fail") {
        t.state = TrialState::failed;
        t.error = r.value("error", "");
      } else if (type == "prune") {
        t.pruned = true;
      } else if (type == "test") {
        t.test_acc = r.at("test_acc").get<double>();
      }
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}:{}: a {} record the search cannot use ({}): move the journal away to start again",
                              journal_.path(), i + 1, type, e.what()));
    }
  }
  for (Trial& t : trials_)
    if (t.state == TrialState::running) reconcile(t);
}

// A trial an earlier run left in flight: its directory says how far it got, which may be an epoch
// further than the journal (a kill between the resume state and the journal's record).
void Engine::reconcile(Trial& t) {
  const std::string dir = trial_dir(t.id);
  namespace fs = std::filesystem;
  record_rungs(t);  // a kill between an epoch's record and its rung's
  if (t.state != TrialState::running) return;
  if (fs::exists(dir + "/summary.json")) {
    for (const auto& [e, r] : metric_rows(read_file(dir + "/metrics.csv"), dir + "/metrics.csv"))
      if (e <= t.target) record_epoch(t, e, r, true);
    // A run that diverged writes its summary too (stop reason "diverged", no model.ckpt).
    const std::string reason = text_field(nlohmann::json::parse(read_file(dir + "/summary.json"), nullptr, false), "stop_reason");
    if (reason == "diverged" || !fs::exists(dir + "/model.ckpt")) job_ended(t, kFailed, "the loss stopped being finite (" + reason + ")");
    else job_ended(t, kFinished, "");
    return;
  }
  if (fs::exists(dir + "/" + kResumeStateFile)) {
    const ResumeProgress p = read_resume_progress(dir + "/" + kResumeStateFile);
    for (const auto& [e, r] : metric_rows(p.metrics, dir + "/" + kResumeStateFile))
      if (e <= p.epoch) record_epoch(t, e, r, true);
    if (t.state == TrialState::running) pending_.push_back(Job{t.id, true, t.target});
    return;
  }
  if (!t.epochs.empty())
    throw Error(fmt::format("{}: the journal records {} finished epochs of trial {} but its directory holds no resume "
                            "state; the search cannot continue it: move {} away to start again",
                            journal_.path(), t.epochs.size(), t.id, s_.out));
  pending_.push_back(Job{t.id, false, t.target});  // killed in its first epoch: started again
}

void Engine::start_job(Trial& t, int rank) {
  t.active = true;
  t.state = TrialState::running;
  if (t.ranks.insert(rank).second) journal_.append({{"type", "run"}, {"trial", t.id}, {"rank", rank}, {"t", now()}});
  ++running_;
}

void Engine::local_worker() {
  std::unique_lock<std::mutex> lock(mu_);
  bool counted = false;  // this worker's job is in running_
  try {
    while (true) {
      std::optional<Job> job;
      while (!job) {
        if (soft() || hard() || !fatal_.empty() || complete_) {
          --workers_left_;
          cv_.notify_all();
          return;
        }
        job = next_job();
        if (job) break;
        if (running_ == 0) {
          complete_ = true;
          continue;
        }
        cv_.wait(lock);
      }
      Trial& t = trials_[job->trial];
      start_job(t, dist::rank());
      counted = true;
      const std::string dir = trial_dir(t.id);
      std::optional<TrainConfig> fresh;
      std::string error;
      End end = kFailed;
      try {
        if (!job->resume) fresh = config_for(t.point, dir);
      } catch (const Error& e) {
        error = e.what();
      }
      if (error.empty()) {
        lock.unlock();
        // Under mpirun the trials run to their rung whatever --time says (docs/search.md), as
        // the other ranks' do.
        const bool ranks = dist::size() > 1;
        end = run_job(
            dir, *job, max_epochs(), fresh ? &*fresh : nullptr, data_, &hard_, [this, ranks] { return !ranks && soft(); },
            [&](const EpochReport& e) {
              std::lock_guard<std::mutex> g(mu_);
              record_epoch(t, e.epoch, EpochRec{e.val_acc, e.val_loss, e.epoch_seconds, 0}, false);
              cv_.notify_all();
            },
            error);
        lock.lock();
      }
      --running_;
      counted = false;
      job_ended(t, end, error);
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    // The journal could not be written (a full disk, say), or worse: stop the whole search,
    // the trials under way at their next step; run() reports it.
    if (!lock.owns_lock()) lock.lock();
    if (fatal_.empty()) fatal_ = e.what();
    hard_.store(SIGTERM);
    if (counted) --running_;
    --workers_left_;
    cv_.notify_all();
  }
}

// Rank 0 under mpirun: hands jobs to the other ranks as they ask and records what they report.
void Engine::serve_ranks() {
  std::vector<int> idle;
  int remote = dist::size() - 1;
  auto last_progress = Clock::now();
  while (remote > 0 || workers_left_ > 0) {
    while (dist::message_waiting(kTagToRoot)) {
      std::vector<int64_t> m;
      const int from = dist::receive(kTagToRoot, m);
      std::lock_guard<std::mutex> g(mu_);
      if (m.empty()) continue;
      if (m[0] == kAsk) {
        idle.push_back(from);
      } else if (m[0] == kEpoch && m.size() == 6 && m[1] >= 0 && m[1] < static_cast<int64_t>(trials_.size())) {
        record_epoch(trials_[m[1]], m[2], EpochRec{from_bits(m[3]), from_bits(m[4]), from_bits(m[5]), 0}, false);
      } else if (m[0] == kEnd && m.size() == 3 && m[1] >= 0 && m[1] < static_cast<int64_t>(trials_.size())) {
        std::string error;
        if (m[2] == kFailed) {
          const std::string file = trial_dir(m[1]) + "/error.txt";
          error = std::filesystem::exists(file) ? read_file(file) : "failed on rank " + std::to_string(from);
        }
        --running_;
        job_ended(trials_[m[1]], static_cast<End>(m[2]), error);
      }
      cv_.notify_all();
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto it = idle.begin(); it != idle.end();) {
        std::optional<Job> job;
        const bool stopping = soft() || hard() || !fatal_.empty() || complete_;
        if (!stopping) {
          try {
            job = next_job();
          } catch (const Error& e) {
            fatal_ = e.what();
          }
        }
        if (job) {
          Trial& t = trials_[job->trial];
          start_job(t, *it);
          if (!job->resume) {
            std::filesystem::create_directories(trial_dir(t.id));
            json opts = json::array();
            for (const auto& [k, v] : options_for(t.point, trial_dir(t.id))) opts.push_back({k, v});
            write_file_atomic(trial_dir(t.id) + "/options.json", opts.dump(1));
          }
          dist::send(*it, kTagJob, {job->trial, job->resume ? 1 : 0, job->target});
          it = idle.erase(it);
        } else if (stopping || running_ == 0) {
          if (!stopping) complete_ = true;
          dist::send(*it, kTagJob, {-1, 0, 0});
          --remote;
          it = idle.erase(it);
        } else {
          ++it;
        }
      }
      cv_.notify_all();
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      watch_stops();
    }
    if (o_.time_limit > 0 && !soft_.load() &&
        std::chrono::duration<double>(Clock::now() - start_).count() >= o_.time_limit) {
      soft_.store(-1);
      timed_out_ = true;
    }
    if (o_.progress != "none" && Clock::now() - last_progress > std::chrono::seconds(30)) {
      last_progress = Clock::now();
      std::lock_guard<std::mutex> g(mu_);
      std::fprintf(stderr, "%s\n", progress_line().c_str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Engine::work_remote() {
  const TrainConfig base = config_for({}, "");
  data_ = load_train_test(base.data_dir, base.data);
  while (true) {
    dist::send(0, kTagToRoot, {kAsk});
    std::vector<int64_t> m;
    dist::receive(kTagJob, m);
    if (m.size() != 3 || m[0] < 0) return;
    const Job job{m[0], m[1] != 0, m[2]};
    const std::string dir = trial_dir(job.trial);
    std::optional<TrainConfig> fresh;
    std::string error;
    End end = kFailed;
    try {
      if (!job.resume) {
        Options opts;
        for (const auto& kv : json::parse(read_file(dir + "/options.json"))) opts.emplace_back(kv.at(0), kv.at(1));
        fresh = make_(opts);
      }
      end = run_job(
          dir, job, max_epochs(), fresh ? &*fresh : nullptr, data_, nullptr, [] { return false; },
          [&](const EpochReport& e) {
            dist::send(0, kTagToRoot, {kEpoch, job.trial, e.epoch, bits(e.val_acc), bits(e.val_loss), bits(e.epoch_seconds)});
          },
          error);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (end == kFailed) write_file_atomic(dir + "/error.txt", error);
    dist::send(0, kTagToRoot, {kEnd, job.trial, end});
  }
}

std::string Engine::progress_line() const {
  int running = 0, paused = 0, pruned = 0, finished = 0, failed = 0;
  double best = -1;
  int64_t best_trial = -1;
  for (const Trial& t : trials_) {
    if (t.active) ++running;
    else if (t.state == TrialState::finished) ++finished;
    else if (t.state == TrialState::failed) ++failed;
    else if (t.pruned) ++pruned;
    else ++paused;
    for (const auto& [e, r] : t.epochs)
      if (r.val_acc > best) {
        best = r.val_acc;
        best_trial = t.id;
      }
  }
  std::string line = fmt::format("search {}: {} trials: {} running, {} paused, {} pruned, {} finished, {} failed", s_.name,
                                 trials_.size(), running, paused, pruned, finished, failed);
  if (best_trial >= 0) line += fmt::format("; best val_acc {:.2f}% (trial {})", best, best_trial);
  if (o_.time_limit > 0) {
    const double used = std::chrono::duration<double>(Clock::now() - start_).count();
    line += "; " + clock_text(o_.time_limit - used) + " left";
  }
  return line;
}

// The test set, for the finished members of the Pareto set only (each once: the journal keeps it).
void Engine::evaluate_pareto() {
  for (size_t i : pareto_set()) {
    Trial& t = trials_[i];
    if (t.state != TrialState::finished || !std::isnan(t.test_acc)) continue;
    LoadedModel m = load_model(trial_dir(t.id) + "/model.ckpt");
    kernels::ThreadScope threads(std::max(1, o_.threads_per_job * o_.jobs));
    t.test_acc = evaluate(*m.model, data_.test, nullptr, m.norm, m.eval_batch, nullptr, m.tta_flip).acc;
    journal_.append({{"type", "test"}, {"trial", t.id}, {"test_acc", t.test_acc}, {"t", now()}});
  }
}

SearchOutcome Engine::run() {
  SearchOutcome out;
  DirLock lock(s_.out, "search directory");
  const TrainConfig base = config_for({}, "");
  data_ = load_train_test(base.data_dir, base.data);
  if (base.val_count <= 0) throw Error("a search chooses on validation accuracy: --val must be above 0");
  check_constraints_reachable(s_, make_, data_.train.channels, data_.train.rows, data_.train.cols, data_.train.num_classes);
  json header{{"type", "search"}, {"space", s_.fingerprint()}, {"name", s_.name}, {"file", s_.path},
              {"version", tailor_version()}};
  const std::vector<json> records = journal_.open(s_.out + "/search.jsonl", header);
  {
    std::lock_guard<std::mutex> g(mu_);
    replay(records);
  }
  const bool resumed = records.size() > 1;
  const int ranks = dist::size();
  const int local_jobs = ranks > 1 ? 1 : o_.jobs;
  if (o_.progress != "none") {
    std::string obj;
    for (const Objective& x : s_.objectives) obj += (obj.empty() ? "" : ", ") + std::string(x.maximize ? "max " : "min ") + metric_name(x.metric);
    std::fprintf(stderr, "search %s: %zu options varied, %s at epochs %s, sampler %s; objectives %s; %d job%s x %d thread%s%s\n",
                 s_.name.c_str(), s_.params.size(), s_.asha ? fmt::format("asha (eta {})", s_.eta).c_str() : "no pruning: every trial",
                 fmt::format("{}", fmt::join(rungs_, ", ")).c_str(),
                 s_.tpe ? fmt::format("tpe after {} random", s_.startup).c_str() : "random", obj.c_str(),
                 ranks > 1 ? ranks : local_jobs, (ranks > 1 ? ranks : local_jobs) == 1 ? "" : "s", o_.threads_per_job,
                 o_.threads_per_job == 1 ? "" : "s", ranks > 1 ? " (one per rank)" : "");
    if (resumed) {
      int64_t epochs = 0;
      for (const Trial& t : trials_) epochs += static_cast<int64_t>(t.epochs.size());
      std::fprintf(stderr, "continuing %s: %zu trials sampled, %lld epochs done, %zu to continue first (%lld epochs "
                           "recovered from their directories)\n",
                   s_.out.c_str(), trials_.size(), static_cast<long long>(epochs - epochs_recovered_), pending_.size(),
                   static_cast<long long>(epochs_recovered_));
    }
  }
  start_ = Clock::now();
  workers_left_ = local_jobs;
  std::vector<std::thread> workers;
  for (int i = 0; i < local_jobs; ++i) workers.emplace_back([this] { local_worker(); });
  const bool bar = o_.progress == "bar" || (o_.progress == "auto" && isatty(fileno(stderr)));
  std::exception_ptr failure;
  try {
    // Under mpirun this thread serves the other ranks (MPI is called from the main thread alone).
    if (ranks > 1) serve_ranks();
    auto last_line = Clock::now();
    std::string last_text;
    std::unique_lock<std::mutex> lock(mu_);
    while (workers_left_ > 0 || running_ > 0) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      watch_stops();
      const double used = std::chrono::duration<double>(Clock::now() - start_).count();
      if (o_.time_limit > 0 && used >= o_.time_limit && !soft_.load()) {
        soft_.store(-1);
        timed_out_ = true;
      }
      if (o_.progress == "none") continue;
      const std::string text = progress_line();
      if (bar && Clock::now() - last_line > std::chrono::seconds(1)) {
        std::fprintf(stderr, "\r%s\033[K", text.c_str());
        last_line = Clock::now();
      } else if (!bar && text != last_text && Clock::now() - last_line > std::chrono::seconds(10)) {
        std::fprintf(stderr, "%s\n", text.c_str());
        last_line = Clock::now();
        last_text = text;
      }
    }
  } catch (...) {
    failure = std::current_exception();
    std::lock_guard<std::mutex> g(mu_);
    hard_.store(SIGTERM);
    if (fatal_.empty()) fatal_ = "stopped";
    cv_.notify_all();
  }
  for (std::thread& w : workers) w.join();
  if (failure) std::rethrow_exception(failure);
  if (bar && o_.progress != "none") std::fprintf(stderr, "\n");
  std::lock_guard<std::mutex> g(mu_);
  if (!fatal_.empty()) throw Error(fatal_);
  if (complete_) {
    for (Trial& t : trials_)
      if (t.state == TrialState::waiting && !t.pruned) {
        t.pruned = true;
        journal_.append({{"type", "prune"}, {"trial", t.id}, {"rung", t.rung}, {"t", now()}});
      }
  }
  evaluate_pareto();
  write_search_tables(view());
  write_search_figures(view());
  out.complete = complete_;
  out.timed_out = timed_out_;
  out.stopped_by = stopped_by_;
  out.trials = static_cast<int64_t>(trials_.size());
  for (const Trial& t : trials_) {
    out.finished += t.state == TrialState::finished;
    out.failed += t.state == TrialState::failed;
    out.pruned += t.pruned;
  }
  out.epochs_run = epochs_run_;
  out.epochs_recovered = epochs_recovered_;
  out.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  out.summary = search_summary(view());
  return out;
}

}  // namespace

SearchOutcome run_search(const SearchSpace& space, const SearchOptions& options, const ConfigMaker& make_config) {
  Engine e(space, options, make_config);
  if (dist::size() > 1 && dist::rank() > 0) {
    e.work_remote();
    return {};
  }
  return e.run();
}

void check_constraints_reachable(const SearchSpace& space, const ConfigMaker& make_config, int64_t channels,
                                 int64_t height, int64_t width, int64_t classes, int draws) {
  if (space.constraints.empty()) return;
  // Draws until a point meets every constraint; false (and why the last failed) when none did.
  auto reachable = [&](const Point& fixed, std::string& why) {
    Rng rng(space.seed ^ 0xC0115747A1A7ull);
    for (int i = 0; i < draws; ++i) {
      const Point p = sample_random(space, rng, fixed);
      Options opts(space.base.begin(), space.base.end());
      for (const auto& kv : p) opts.push_back(kv);
      ModelSpec spec;
      try {
        TrainConfig cfg = make_config(opts);
        spec = cfg.model;
        spec.in_channels = channels;
        spec.height = height;
        spec.width = width;
        spec.classes = classes;
        if (cfg.weights_target > 0) spec = fit_to_budget(spec, cfg.weights_target);
      } catch (const Error& e) {
        why = e.what();
        continue;
      }
      const double w = static_cast<double>(count_weights(spec)), mf = forward_flops(spec) / 1e6;
      bool ok = true;
      for (const Constraint& c : space.constraints) {
        const double v = c.metric == Metric::weights ? w : mf;
        if (v > c.limit) {
          ok = false;
          why = fmt::format("{} {:.6g} breaks {}", metric_name(c.metric), v, c.text);
        }
      }
      if (ok) return true;
    }
    return false;
  };
  std::string list, why;
  for (const Constraint& c : space.constraints) list += (list.empty() ? "" : ", ") + c.text;
  if (!reachable({}, why))
    throw Error(fmt::format("{}: no point of the space meets its constraints ({}) in {} random draws (the last: {}); "
                            "widen the space or the bounds",
                            space.path, list, draws, why));
  // A stratified choice takes its turn in every few trials: each of its values must be able to.
  for (const std::string& key : space.stratify)
    for (const std::string& value : space.param(key)->dist.choices)
      if (!reachable({{key, value}}, why))
        throw Error(fmt::format("{}: stratify: with {} = {} no point meets the constraints ({}) in {} random draws "
                                "(the last: {}); drop that choice or widen the bounds",
                                space.path, key, value, list, draws, why));
}

}  // namespace tailor
