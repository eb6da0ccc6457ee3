// tailor search: the ranking (non-dominated sorting, crowding), the samplers, the space file's
// errors, and whole searches on a tiny data set: ASHA prunes, a search killed with SIGKILL and
// started again ends as one never stopped, a torn journal line is redone, a damaged one refused.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli_runner.hpp"
#include "search/sampler.hpp"
#include "search/search.hpp"
#include "search/space.hpp"
#include "sweep/sweep_file.hpp"
#include "tiny_data.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::run_tailor;
using testing::slurp;

// ---- Ranking ----

TEST(Pareto, FrontsAreTheLayersOfNonDominatedPoints) {
  // Minimise both: (1,5) (2,3) (4,1) are the front; (3,4) is beaten by (2,3); (5,5) by everything.
  const std::vector<std::vector<double>> pts{{1, 5}, {3, 4}, {2, 3}, {5, 5}, {4, 1}};
  EXPECT_EQ(pareto_fronts(pts), (std::vector<int>{0, 1, 0, 2, 0}));
}

TEST(Pareto, CrowdingKeepsTheEndsAndTheLonely) {
  // One front of four points on a line: the ends are infinite; the inner ones sum their
  // neighbours' gaps over the span in each objective.
  const std::vector<std::vector<double>> pts{{0, 10}, {1, 9}, {5, 5}, {10, 0}};
  const std::vector<int> fronts = pareto_fronts(pts);
  const std::vector<double> d = crowding_distances(pts, fronts);
  EXPECT_TRUE(std::isinf(d[0]));
  EXPECT_TRUE(std::isinf(d[3]));
  EXPECT_NEAR(d[1], (5.0 - 0.0) / 10 + (10.0 - 5.0) / 10, 1e-12);
  EXPECT_NEAR(d[2], (10.0 - 1.0) / 10 + (9.0 - 0.0) / 10, 1e-12);
  // Best first: the ends (older first), then the lonelier inner point.
  EXPECT_EQ(rank_order(pts), (std::vector<size_t>{0, 3, 2, 1}));
}

TEST(Pareto, OneObjectiveRanksByItsValueThenAge) {
  EXPECT_EQ(rank_order({{3}, {1}, {2}, {1}}), (std::vector<size_t>{1, 3, 2, 0}));
}

// ---- Samplers ----

SearchSpace lr_space() {
  SearchSpace s;
  SpaceParam lr;
  lr.key = "lr";
  lr.dist.kind = DistKind::log_uniform;
  lr.dist.lo = 1e-5;
  lr.dist.hi = 1e-1;
  SpaceParam opt;
  opt.key = "optimizer";
  opt.dist.choices = {"adam", "sgd", "rmsprop"};
  SpaceParam mom;
  mom.key = "momentum";
  mom.dist.kind = DistKind::uniform;
  mom.dist.lo = 0.5;
  mom.dist.hi = 0.99;
  mom.when_key = "optimizer";
  mom.when_values = {"sgd"};
  s.params = {lr, opt, mom};
  return s;
}

TEST(Sampler, RandomDrawsStayInTheirRangesAndHonourWhen) {
  const SearchSpace s = lr_space();
  Rng rng(7);
  int with_momentum = 0;
  for (int i = 0; i < 300; ++i) {
    const Point p = sample_random(s, rng);
    const double lr = std::stod(p.at("lr"));
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-1);
    EXPECT_EQ(p.count("momentum"), p.at("optimizer") == "sgd" ? 1u : 0u) << p.at("optimizer");
    with_momentum += static_cast<int>(p.count("momentum"));
  }
  EXPECT_GT(with_momentum, 50);
  EXPECT_LT(with_momentum, 150);
}

TEST(Sampler, TpeIsDeterministicAndDrawsNearTheGoodPoints) {
  const SearchSpace s = lr_space();
  // History, best first: the good trials used adam near lr 1e-3; the bad ones anything else.
  std::vector<Point> history;
  for (double lr : {1.1e-3, 0.9e-3, 1.3e-3, 0.8e-3}) history.push_back({{"lr", std::to_string(lr)}, {"optimizer", "adam"}});
  Rng spread(3);
  for (int i = 0; i < 30; ++i) {
    Point p = sample_random(s, spread);
    if (std::abs(std::log10(std::stod(p.at("lr"))) + 3) < 1) continue;  // keep the bad ones away from 1e-3
    history.push_back(p);
  }
  Rng a(11), b(11);
  EXPECT_EQ(sample_tpe(s, history, a), sample_tpe(s, history, b));
  // Against random draws: TPE's lr lies closer to 1e-3 (in decades) and picks adam more often.
  double tpe_dist = 0, random_dist = 0;
  int tpe_adam = 0, random_adam = 0;
  Rng t(5), r(5);
  for (int i = 0; i < 200; ++i) {
    const Point p = sample_tpe(s, history, t), q = sample_random(s, r);
    tpe_dist += std::abs(std::log10(std::stod(p.at("lr"))) + 3);
    random_dist += std::abs(std::log10(std::stod(q.at("lr"))) + 3);
    tpe_adam += p.at("optimizer") == "adam";
    random_adam += q.at("optimizer") == "adam";
  }
  EXPECT_LT(tpe_dist, 0.5 * random_dist);
  EXPECT_GT(tpe_adam, random_adam + 40);
}

TEST(Sampler, StratifiedChoicesTakeTurnsUnderRandomAndTpe) {
  SearchSpace s = lr_space();
  SpaceParam budget;
  budget.key = "weights";
  budget.dist.choices = {"10k", "20k", "50k", "100k"};
  s.params.push_back(budget);
  s.stratify = {"weights"};
  // A history whose good trials are all 10k: TPE alone would keep drawing 10k (checked below).
  std::vector<Point> history;
  for (double lr : {1.1e-3, 0.9e-3, 1.3e-3}) history.push_back({{"lr", std::to_string(lr)}, {"optimizer", "adam"}, {"weights", "10k"}});
  for (const char* w : {"20k", "20k", "50k", "100k", "20k", "50k", "100k", "20k", "50k", "100k", "20k", "50k", "100k"})
    history.push_back({{"lr", "0.05"}, {"optimizer", "sgd"}, {"momentum", "0.6"}, {"weights", w}});
  Rng free_rng(9);
  int tpe_10k = 0;
  for (int i = 0; i < 40; ++i) tpe_10k += sample_tpe(s, history, free_rng).at("weights") == "10k";
  EXPECT_GT(tpe_10k, 36) << "the history should make TPE favour 10k";
  // Taking turns: the fewest-used value next, the first on a tie; the rest still drawn by TPE.
  std::vector<Point> sampled;
  Rng rng(4);
  std::map<std::string, int> count;
  double lr_decades = 0;
  for (int i = 0; i < 12; ++i) {
    const Point fixed = stratified_values(s, sampled);
    const Point p = i < 4 ? sample_random(s, rng, fixed) : sample_tpe(s, history, rng, fixed);
    EXPECT_EQ(p.at("weights"), s.params.back().dist.choices[static_cast<size_t>(i % 4)]) << i;
    if (i >= 4) lr_decades += std::abs(std::log10(std::stod(p.at("lr"))) + 3);
    ++count[p.at("weights")];
    sampled.push_back(p);
  }
  for (const auto& c : budget.dist.choices) EXPECT_EQ(count[c], 3) << c;
  EXPECT_LT(lr_decades / 8, 0.7) << "lr should still follow the good trials (near 1e-3)";
  // Values outside the list (an edited journal) count for nothing.
  EXPECT_EQ(stratified_values(s, {{{"weights", "7k"}}, {{"weights", "10k"}}}).at("weights"), "20k");
}

// ---- Whole searches ----

class Search : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("tailor_search_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 600, 150);
    // Whole searches run on a slice of Fashion-MNIST: the tiny set is learnt perfectly in an
    // epoch or two, and a search among ties ranks nothing.
    fashion_ = testing::write_fashion_slice(root_ + "/fashion", 1500, 300);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = root_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string search_cmd(const std::string& file, const std::string& out, const std::string& data = "fashion") const {
    return "search " + file + " --out " + out + " --data " + root_ + "/" + data +
           " --jobs 1 --threads-per-job 1 --progress none";
  }
  // A bad space or command: one line naming what is wrong, non-zero exit, nothing trained.
  void expect_error(const std::string& space, const std::string& flags, const std::string& says) {
    const std::string path = write("bad.toml", space);
    auto r = run_tailor(search_cmd(path, root_ + "/bad_out", "data") + flags, root_);
    EXPECT_NE(r.code, 0) << space;
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(root_ + "/bad_out/trials")) << "nothing may train";
  }
  std::string root_;
  bool fashion_ = false;
};

#define NEEDS_FASHION() \
  if (!fashion_) GTEST_SKIP() << "Fashion-MNIST is not installed (Debian's dataset-fashion-mnist; scripts/setup.sh)"

// Six options, one of them only under sgd; ASHA from 1 to 8 epochs, eta 2.
const char* kSpace = R"(name = "tiny"
seed = 5
trials = 14
objectives = ["max val_acc", "min weights"]
constraints = ["weights <= 20k"]
[base]
model = "fcn"
val = 300
batch-size = 32
[space]
lr = { log_uniform = [1e-3, 3e-2] }
hidden = { choice = [[8], [16], [32], [16, 16]] }
optimizer = { choice = ["adam", "sgd"] }
momentum = { uniform = [0.5, 0.95], when = { optimizer = ["sgd"] } }
dropout = { uniform = [0.0, 0.3] }
label-smoothing = { uniform = [0.0, 0.1] }
[schedule]
kind = "asha"
min-epochs = 1
max-epochs = 8
eta = 2
[sampler]
kind = "tpe"
startup = 5
)";

struct JournalCounts {
  std::map<std::pair<int64_t, int64_t>, int> epochs;  // (trial, epoch) -> times recorded
  int recovered = 0, samples = 0, promotions = 0;
  std::map<int64_t, std::string> kinds;
};

JournalCounts read_journal(const std::string& path) {
  JournalCounts j;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json r = nlohmann::json::parse(line);
    const std::string type = r.at("type");
    if (type == "epoch") {
      ++j.epochs[{r.at("trial").get<int64_t>(), r.at("epoch").get<int64_t>()}];
      j.recovered += r.value("recovered", false);
    }
    j.samples += type == "sample";
    j.promotions += type == "promote";
  }
  return j;
}

// trials.csv or pareto.csv without the columns that measure time.
std::string without_time(const std::string& csv) {
  std::istringstream in(csv);
  std::string line, out;
  std::getline(in, line);
  std::vector<std::string> head;
  std::stringstream h(line);
  for (std::string c; std::getline(h, c, ',');) head.push_back(c);
  const auto drop = std::find(head.begin(), head.end(), "train_seconds") - head.begin();
  in.clear();
  in.seekg(0);
  while (std::getline(in, line)) {
    std::stringstream r(line);
    int i = 0;
    for (std::string c; std::getline(r, c, ','); ++i)
      if (i != drop) out += c + ",";
    out += "\n";
  }
  return out;
}

TEST_F(Search, AshaPrunesWritesEveryOutputAndKeepsTheTestSetApart) {
  NEEDS_FASHION();
  const std::string file = write("space.toml", kSpace), out = root_ + "/out";
  auto r = run_tailor(search_cmd(file, out), root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("search tiny: 14 trials"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("complete"), std::string::npos) << r.out;
  // Every trial trained at least its first rung; fewer reached each later one; only the top ones finished.
  const JournalCounts j = read_journal(out + "/search.jsonl");
  EXPECT_EQ(j.samples, 14);
  std::map<int64_t, int64_t> reached;
  for (const auto& [key, n] : j.epochs) {
    EXPECT_EQ(n, 1) << "trial " << key.first << " epoch " << key.second << " recorded twice";
    reached[key.first] = std::max(reached[key.first], key.second);
  }
  ASSERT_EQ(reached.size(), 14u);
  std::map<int64_t, int> at;  // trials that reached each rung's epoch
  int total_epochs = 0;
  for (const auto& [trial, e] : reached) {
    EXPECT_TRUE(e == 1 || e == 2 || e == 4 || e == 8) << "trial " << trial << " stopped off its rungs at " << e;
    for (int64_t r : {1, 2, 4, 8}) at[r] += e >= r;
    total_epochs += static_cast<int>(e);
  }
  EXPECT_EQ(at[1], 14);
  EXPECT_LT(at[2], at[1]);
  EXPECT_LT(at[4], at[2]);
  EXPECT_LE(at[8], at[4]);
  EXPECT_GE(at[8], 1);
  EXPECT_LT(total_epochs, 14 * 8 * 3 / 4) << "ASHA should save at least a quarter of training every trial to the end";
  // trials.csv: one row per trial; statuses finished or pruned; no test accuracy there.
  const std::string trials = slurp(out + "/trials.csv");
  EXPECT_EQ(std::count(trials.begin(), trials.end(), '\n'), 15);
  EXPECT_EQ(trials.rfind("trial,status,epochs,--lr,--hidden,--optimizer,--momentum,--dropout,--label-smoothing,weights,", 0), 0u)
      << trials;
  EXPECT_EQ(trials.find("test"), std::string::npos) << "the test set is reported apart, in pareto.csv only";
  EXPECT_EQ(trials.find(",paused,"), std::string::npos);
  EXPECT_NE(trials.find(",pruned,"), std::string::npos);
  // Momentum only where sgd was drawn; every model within the constraint.
  std::istringstream in(trials);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f(1);
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      else if (c == ',' && !quoted) f.emplace_back();
      else f.back() += c;
    }
    ASSERT_GE(f.size(), 14u) << line;
    // trial,status,epochs,lr,hidden,optimizer,momentum,dropout,label-smoothing,weights,...
    EXPECT_EQ(f[6].empty(), f[5] != "sgd") << line;
    EXPECT_LE(std::stoll(f[9]), 20000) << line;
  }
  // The Pareto set has test accuracy; best.toml is a sweep file that retrains it with 3 seeds.
  const std::string pareto = slurp(out + "/pareto.csv");
  EXPECT_NE(pareto.find("test_acc"), std::string::npos);
  EXPECT_GE(std::count(pareto.begin(), pareto.end(), '\n'), 2);
  const SweepSpec best = read_sweep(out + "/best.toml", cli::train_option_table(), cli::check_train_option);
  EXPECT_EQ(best.trials.size(), 3u * (std::count(pareto.begin(), pareto.end(), '\n') - 1));
  for (const TrialSpec& t : best.trials) EXPECT_EQ(*t.get("epochs"), "8");
  for (const char* f : {"report.html", "figures/val_acc_vs_weights.png", "figures/best_so_far.png", "figures/slice_lr.png"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  // The trials themselves never looked at the test set.
  const std::string metrics = slurp(out + "/trials/0000/metrics.csv");
  EXPECT_NE(metrics.find(",nan,"), std::string::npos) << metrics;
}

// Starts `cmd` and kills it with SIGKILL once OUT/search.jsonl has `records` lines (or it ended).
void kill_at(const std::string& cmd, const std::string& out, int records) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto lines = [&] {
    std::ifstream in(out + "/search.jsonl");
    return static_cast<int>(std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
  };
  int status = 0;
  while (lines() < records && std::chrono::steady_clock::now() < deadline && waitpid(pid, &status, WNOHANG) == 0)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

// kill -9 at three moments; each rerun continues without recomputing a finished epoch, and with
// --jobs 1 the trials and the Pareto set equal an uninterrupted search's.
TEST_F(Search, KilledThreeTimesEndsAsASearchNeverStopped) {
  NEEDS_FASHION();
  const std::string file = write("space.toml", kSpace);
  auto whole = run_tailor(search_cmd(file, root_ + "/whole"), root_);
  ASSERT_EQ(whole.code, 0) << whole.err;
  const std::string out = root_ + "/killed";
  const std::string cmd = std::string(TAILOR_BINARY) + " " + search_cmd(file, out);
  for (int records : {6, 30, 70}) kill_at(cmd, out, records);
  auto rest = run_tailor(search_cmd(file, out), root_);
  ASSERT_EQ(rest.code, 0) << rest.err;
  const JournalCounts j = read_journal(out + "/search.jsonl");
  for (const auto& [key, n] : j.epochs) EXPECT_EQ(n, 1) << "trial " << key.first << " epoch " << key.second << " recomputed";
  EXPECT_EQ(j.epochs.size(), read_journal(root_ + "/whole/search.jsonl").epochs.size());
  EXPECT_EQ(without_time(slurp(out + "/trials.csv")), without_time(slurp(root_ + "/whole/trials.csv")));
  EXPECT_EQ(without_time(slurp(out + "/pareto.csv")), without_time(slurp(root_ + "/whole/pareto.csv")));
}

// --jobs 2: killed three times, each time continued; every epoch is recorded once and the search
// completes (two trials at once: which runs first varies, so the trials may differ from a run
// never stopped).
TEST_F(Search, TwoJobsKilledThreeTimesRecomputeNoEpoch) {
  NEEDS_FASHION();
  const std::string file = write("space.toml", kSpace), out = root_ + "/killed2";
  const std::string cmd = std::string(TAILOR_BINARY) + " " + search_cmd(file, out) + " --jobs 2";
  for (int records : {10, 40, 80}) {
    kill_at(cmd, out, records);
    const JournalCounts j = read_journal(out + "/search.jsonl");
    for (const auto& [key, n] : j.epochs) EXPECT_EQ(n, 1) << "trial " << key.first << " epoch " << key.second;
  }
  auto rest = run_tailor(search_cmd(file, out) + " --jobs 2", root_);
  ASSERT_EQ(rest.code, 0) << rest.err;
  EXPECT_NE(rest.out.find("search tiny: 14 trials"), std::string::npos) << rest.out;
  EXPECT_NE(rest.out.find("complete"), std::string::npos) << rest.out;
  const JournalCounts j = read_journal(out + "/search.jsonl");
  for (const auto& [key, n] : j.epochs) EXPECT_EQ(n, 1) << "trial " << key.first << " epoch " << key.second << " recomputed";
}

// A kill between an epoch's record and what follows it (its rung, the trial's finish): the
// journal cut right after the last epoch of a whole search, whose directories are then exactly as
// at that moment. On restart the rung (and finish) are recorded, the trial is not trained past
// its rung, and the search ends as one never stopped. Three trial limits end the search on
// different jobs (a pause at a lower rung, a finish).
TEST_F(Search, AKillAfterAnEpochsRecordLosesNothingAndTrainsNoFurther) {
  NEEDS_FASHION();
  const std::string file = write("space.toml", kSpace);
  for (int limit : {5, 9, 14}) {
    SCOPED_TRACE(std::to_string(limit) + " trials");
    const std::string whole = root_ + "/whole" + std::to_string(limit), flag = " --trials " + std::to_string(limit);
    ASSERT_EQ(run_tailor(search_cmd(file, whole) + flag, root_).code, 0);
    std::vector<std::string> lines;
    std::ifstream in(whole + "/search.jsonl");
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    size_t cut = 0;
    for (size_t i = 0; i < lines.size(); ++i)
      if (nlohmann::json::parse(lines[i]).at("type") == "epoch") cut = i + 1;
    ASSERT_LT(cut, lines.size());
    const std::string out = root_ + "/cut" + std::to_string(limit);
    fs::copy(whole, out, fs::copy_options::recursive);
    std::string text;
    for (size_t i = 0; i < cut; ++i) text += lines[i] + "\n";
    std::ofstream(out + "/search.jsonl") << text;
    auto r = run_tailor(search_cmd(file, out) + flag, root_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find(" 0 epochs trained"), std::string::npos) << r.out;
    for (const auto& [key, n] : read_journal(out + "/search.jsonl").epochs) EXPECT_EQ(n, 1);
    EXPECT_EQ(without_time(slurp(out + "/trials.csv")), without_time(slurp(whole + "/trials.csv")));
    EXPECT_EQ(without_time(slurp(out + "/pareto.csv")), without_time(slurp(whole + "/pareto.csv")));
  }
}

TEST_F(Search, ATornLastLineIsRedoneADamagedOneAndAnotherSpaceRefused) {
  NEEDS_FASHION();
  const std::string file = write("space.toml", kSpace), out = root_ + "/out";
  ASSERT_EQ(run_tailor(search_cmd(file, out), root_).code, 0);
  const std::string journal = slurp(out + "/search.jsonl");
  // A torn last record (a kill in the middle of a write): ignored, cut off, and the search is complete.
  std::ofstream(out + "/search.jsonl", std::ios::app) << "{\"type\":\"epo";
  auto r = run_tailor(search_cmd(file, out), root_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(out + "/search.jsonl").rfind(journal, 0), 0u) << "the good records stay as they were";
  EXPECT_EQ(slurp(out + "/search.jsonl").find("{\"type\":\"epo\n"), std::string::npos);
  // A damaged line in the middle: refused, naming the file and line.
  std::string damaged = journal;
  damaged.replace(damaged.find('\n', damaged.find('\n') + 1) + 1, 5, "#####");
  std::ofstream(out + "/search.jsonl") << damaged;
  r = run_tailor(search_cmd(file, out), root_);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find(out + "/search.jsonl:3: the search journal is damaged"), std::string::npos) << r.err;
  // Another space (another range) in the same directory: refused.
  std::ofstream(out + "/search.jsonl") << journal;
  std::string other = kSpace;
  other.replace(other.find("3e-2"), 4, "5e-2");
  const std::string file2 = write("other.toml", other);
  r = run_tailor(search_cmd(file2, out), root_);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find("was written by another search space"), std::string::npos) << r.err;
  // Fields of the wrong type (found by fuzz_sweep): one line, not a JSON type error.
  std::string numbered = journal;
  const size_t fp = numbered.find("\"space\":\"");
  numbered.replace(fp, numbered.find('"', fp + 9) - fp + 1, "\"space\":1.0");
  std::ofstream(out + "/search.jsonl") << numbered;
  r = run_tailor(search_cmd(file, out), root_);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find("was written by another search space (fingerprint 1.0"), std::string::npos) << r.err;
  std::ofstream(out + "/search.jsonl") << journal << "{\"type\":\"prune\",\"trial\":0,\"t\":\"soon\"}\n";
  r = run_tailor(search_cmd(file, out), root_);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find("a prune record the search cannot use"), std::string::npos) << r.err;
}

// Ctrl-C: the trial under way finishes its epoch, every output is written, the process ends by
// SIGINT, and the same command then finishes the search.
TEST_F(Search, InterruptedWritesEverythingAndContinues) {
  NEEDS_FASHION();
  std::string space = kSpace;
  space.replace(space.find("trials = 14"), 11, "trials = 40");
  const std::string file = write("space.toml", space), out = root_ + "/out";
  const std::string cmd = std::string(TAILOR_BINARY) + " " + search_cmd(file, out);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>" + root_ + "/err.txt").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(out + "/trials/0003/metrics.csv") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
  EXPECT_NE(slurp(root_ + "/err.txt").find("interrupted; every output is written; continue with tailor search"),
            std::string::npos)
      << slurp(root_ + "/err.txt");
  EXPECT_TRUE(fs::exists(out + "/trials.csv"));
  EXPECT_TRUE(fs::exists(out + "/report.html"));
  auto r = run_tailor(search_cmd(file, out), root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("search tiny: 40 trials"), std::string::npos) << r.out;
  for (const auto& [key, n] : read_journal(out + "/search.jsonl").epochs) EXPECT_EQ(n, 1);
}

TEST_F(Search, StratifiedChoiceTakesTurns) {
  NEEDS_FASHION();
  std::string space = kSpace;
  space.replace(space.find("trials = 14"), 11, "trials = 8");
  space += "stratify = [\"optimizer\"]\n";
  const std::string file = write("strat.toml", space), out = root_ + "/strat";
  auto r = run_tailor(search_cmd(file, out), root_);
  ASSERT_EQ(r.code, 0) << r.err;
  // adam, sgd, adam, ... whether drawn at random (the first five) or by TPE; momentum under sgd.
  std::ifstream in(out + "/search.jsonl");
  std::vector<nlohmann::json> points;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json rec = nlohmann::json::parse(line);
    if (rec.at("type") == "sample") points.push_back(rec.at("point"));
  }
  ASSERT_EQ(points.size(), 8u);
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(points[i].at("optimizer"), i % 2 ? "sgd" : "adam") << i;
    EXPECT_EQ(points[i].contains("momentum"), i % 2 == 1) << i;
  }
}

TEST_F(Search, BadInputIsOneLineAndTrainsNothing) {
  const std::string ok_head = "name = \"x\"\ntrials = 2\n[base]\nmodel = \"fcn\"\nval = 150\n";
  expect_error(ok_head + "[space]\nfrobnicate = { uniform = [0, 1] }\n", "", "key 'frobnicate': is not a `tailor train` option");
  expect_error(ok_head + "frobnicate = 3\n", "", "key 'frobnicate': is not a `tailor train` option");
  expect_error(ok_head + "[space]\noptimizer = { choice = [] }\n", "", "key 'optimizer': its choice needs a non-empty list");
  expect_error(ok_head + "[space]\ndropout = { uniform = [0.4, 0.1] }\n", "", "uniform wants low <= high");
  expect_error(ok_head + "[space]\nlr = { log_uniform = [0, 0.1] }\n", "", "log_uniform needs bounds above 0");
  expect_error(ok_head + "[space]\nlr = { log_uniform = [-1, 0.1] }\n", "", "log_uniform needs bounds above 0");
  expect_error(ok_head + "[space]\nbatch-size = { uniform = [8, 64] }\n", "", "use int_uniform");
  expect_error("objectives = [\"max accuracy\"]\n" + ok_head, "", "'accuracy' is not a metric");
  expect_error("objectives = [\"min weights\"]\n" + ok_head, "", "needs val_acc or val_loss");
  expect_error("constraints = [\"weights <= 100\"]\n" + ok_head + "hidden = [64]\n", "",
               "no point of the space meets its constraints (weights <= 100)");
  expect_error("constraints = [\"val_acc <= 90\"]\n" + ok_head, "", "may bound weights or mflops only");
  expect_error(ok_head + "epochs = 5\n", "", "key 'epochs': is set by the search itself");
  expect_error(ok_head + "[schedule]\nkind = \"asha\"\nmin-epochs = 5\nmax-epochs = 5\n", "", "must be below max-epochs");
  expect_error(ok_head + "[space]\nmomentum = { uniform = [0.5, 0.9], when = { optimiser = [\"sgd\"] } }\n", "",
               "when names 'optimiser'");
  expect_error(ok_head + "[space]\nlr = { log_uniform = [1e-3, 1e-2] }\n[sampler]\nstratify = [\"lr\"]\n", "",
               "'lr' must be a choice to take turns");
  expect_error(ok_head + "[space]\noptimizer = { choice = [\"adam\"] }\n[sampler]\nstratify = [\"dropout\"]\n", "",
               "'dropout' is not an option of [space]");
  expect_error(ok_head + "[space]\noptimizer = { choice = [\"adam\"] }\n[sampler]\nstratify = \"optimizer\"\n", "",
               "stratify': must be a list");
  expect_error("constraints = [\"weights <= 2k\"]\n" + ok_head +
                   "[space]\nhidden = { choice = [[8], [256]] }\n[sampler]\nstratify = [\"hidden\"]\n",
               "", "stratify: with hidden = 256 no point meets the constraints (weights <= 2k)");
  expect_error(ok_head, " --time -5m", "--time: '-5m' is negative");
  expect_error(ok_head, " --time 5x", "unknown unit 'x'");
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// Every shipped search space reads, and its constraints are within reach (1,000 random draws on
// Fashion-MNIST's 28x28 grey pictures).
TEST(ShippedSpaces, AllReadAndCanMeetTheirConstraints) {
  const std::string dir = std::string(TAILOR_TEST_DATA) + "/../../experiments/search";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".toml") continue;
    ++files;
    const SearchSpace s = read_space(e.path().string(), cli::train_option_table(), cli::check_train_option);
    EXPECT_GE(s.params.size(), 6u) << e.path();
    EXPECT_NO_THROW(check_constraints_reachable(s, cli::train_config_from_options, 1, 28, 28, 10)) << e.path();
  }
  EXPECT_GE(files, 2);
}

}  // namespace
}  // namespace tailor
