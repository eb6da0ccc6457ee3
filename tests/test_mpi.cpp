// Open MPI on this machine (mpirun --oversubscribe on localhost): a distributed sweep gives the
// single-host sweep's table and every trial's bytes; a rank killed mid-sweep costs only what was
// running, and the rerun redoes nothing finished; data-parallel training matches single-process
// training with the same global batch (summation order aside) and, with batch norm, its accuracy;
// a search uses every rank, and a rank killed mid-search costs no finished epoch.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "data/dataset.hpp"
#include "tiny_data.hpp"
#include "train/checkpoint.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::Ran;
using testing::slurp;

// Two checkpoints hold the same weights and batch-norm statistics, bit for bit.
void expect_same_arrays(const std::string& path_a, const std::string& path_b) {
  const Checkpoint a = read_checkpoint(path_a), b = read_checkpoint(path_b);
  ASSERT_EQ(a.weights.size(), b.weights.size());
  EXPECT_EQ(std::memcmp(a.weights.data(), b.weights.data(), a.weights.size() * sizeof(float)), 0);
  ASSERT_EQ(a.stats.size(), b.stats.size());
  EXPECT_EQ(std::memcmp(a.stats.data(), b.stats.data(), a.stats.size() * sizeof(float)), 0);
}

class Mpi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_mpi_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    // 640 training images: with --val 0 and batches of 64, an epoch is exactly 10 steps.
    testing::write_tiny_dataset(root_ + "/data", 640, 150);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override {
    if (std::system("command -v mpirun > /dev/null 2>&1") != 0)
      GTEST_SKIP() << "mpirun not found (Debian's openmpi-bin; scripts/setup.sh installs it)";
  }

  static std::string mpirun(int ranks) {
    return "mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " " + TAILOR_BINARY + " ";
  }
  static Ran run(const std::string& command) { return testing::run_command(command, root_); }
  static Ran tailor(const std::string& args) { return testing::run_tailor(args, root_); }
  static std::string dir(const std::string& name) { return root_ + "/" + name; }

  static void write_sweep(const std::string& path, int epochs) {
    std::ofstream(path) << "name = \"small\"\nseeds = [1, 2]\n[base]\nmodel = \"fcn\"\nhidden = [32]\nepochs = "
                        << epochs << "\nval = 64\nbatch-size = 32\n[grid]\noptimizer = [\"sgd\", \"adam\"]\n"
                        << "dropout = [0.0, 0.2]\n";
  }

  // table.csv without its train_seconds column.
  static std::string table_without_times(const std::string& sweep_dir) {
    std::istringstream in(slurp(sweep_dir + "/table.csv"));
    std::string line, out;
    int seconds_col = -1;
    while (std::getline(in, line)) {
      std::vector<std::string> cols;
      std::stringstream s(line);
      for (std::string c; std::getline(s, c, ',');) cols.push_back(c);
      if (seconds_col < 0)
        for (size_t i = 0; i < cols.size(); ++i)
          if (cols[i] == "train_seconds") seconds_col = static_cast<int>(i);
      for (size_t i = 0; i < cols.size(); ++i)
        if (static_cast<int>(i) != seconds_col) out += cols[i] + ",";
      out += "\n";
    }
    return out;
  }

  static nlohmann::json summary_without_times(const std::string& path) {
    nlohmann::json j = nlohmann::json::parse(slurp(path));
    for (const char* k : {"train_seconds", "wall_seconds", "peak_rss_mb"}) j.erase(k);
    return j;
  }

  // Largest |a - b| over the weights of two checkpoints, relative to the largest |a|.
  static double relative_difference(const std::string& a, const std::string& b) {
    const Checkpoint x = read_checkpoint(a), y = read_checkpoint(b);
    EXPECT_EQ(x.weights.size(), y.weights.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < x.weights.size() && i < y.weights.size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(x.weights[i] - y.weights[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(x.weights[i])));
    }
    return diff / scale;
  }

  static std::string root_;
};
std::string Mpi::root_;

// The same sweep file on 2 and on 3 ranks: the single-host sweep's table, and every trial's
// checkpoint and summary byte for byte (the same trial, seed and threads run the same way).
TEST_F(Mpi, DistributedSweepEqualsTheSingleHostSweep) {
  const std::string file = dir("small.toml");
  write_sweep(file, 3);
  Ran local = tailor("sweep " + file + " --jobs 2 --progress none --data " + dir("data") + " --out " + dir("sweep_local"));
  ASSERT_EQ(local.code, 0) << local.err;
  for (int ranks : {2, 3}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    const std::string out = dir("sweep_mpi" + std::to_string(ranks));
    Ran r = run(mpirun(ranks) + "sweep " + file + " --progress lines --data " + dir("data") + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("sweep small: 8 trials (0 already done, 8 ran, 0 failed"), std::string::npos) << r.out;
    EXPECT_EQ(table_without_times(out), table_without_times(dir("sweep_local")));
    int trials = 0;
    for (const auto& e : fs::directory_iterator(dir("sweep_local") + "/trials")) {
      const std::string id = e.path().filename().string(), other = out + "/trials/" + id;
      EXPECT_EQ(slurp(e.path().string() + "/model.ckpt"), slurp(other + "/model.ckpt")) << id;
      EXPECT_EQ(summary_without_times(e.path().string() + "/summary.json"), summary_without_times(other + "/summary.json"));
      ++trials;
    }
    EXPECT_EQ(trials, 8);
  }
}

// Rows that learn from another row (teacher = "row:NAME") over 3 ranks: the students wait for
// their teachers, which the ranks train first, and every trial's checkpoint is the single-host
// sweep's, byte for byte.
TEST_F(Mpi, DistributedSweepRunsTeachersBeforeTheirStudents) {
  const std::string file = dir("teach.toml");
  std::ofstream(file) << "name = \"teach\"\nseeds = [1, 2]\n[base]\nepochs = 3\nval = 64\nbatch-size = 32\n"
                         "[[row]]\nname = \"student\"\nmodel = \"fcn\"\nhidden = [16]\nteacher = \"row:teacher\"\n"
                         "[[row]]\nname = \"student small\"\nmodel = \"fcn\"\nhidden = [8]\nteacher = \"row:teacher\"\n"
                         "[[row]]\nname = \"teacher\"\nmodel = \"cnn\"\nchannels = [4]\nhidden = [8]\n";
  Ran local = tailor("sweep " + file + " --jobs 2 --progress none --data " + dir("data") + " --out " + dir("teach_local"));
  ASSERT_EQ(local.code, 0) << local.err;
  const std::string out = dir("teach_mpi");
  Ran r = run(mpirun(3) + "sweep " + file + " --progress lines --data " + dir("data") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sweep teach: 6 trials (0 already done, 6 ran, 0 failed"), std::string::npos) << r.out;
  int trials = 0;
  for (const auto& e : fs::directory_iterator(dir("teach_local") + "/trials")) {
    const std::string id = e.path().filename().string(), other = out + "/trials/" + id;
    EXPECT_EQ(slurp(e.path().string() + "/model.ckpt"), slurp(other + "/model.ckpt")) << id;
    ++trials;
  }
  EXPECT_EQ(trials, 6);
}

// The pid of the tailor sweep process that is MPI rank `rank` of a running job writing to `out`
// (from /proc), or -1. `out` keeps it to this test's job: under ctest -j2 another test's sweep
// ran beside it, and killing that one's rank 1 failed both tests.
pid_t rank_pid(int rank, const std::string& out, const std::string& command = "sweep") {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = slurp(e.path().string() + "/cmdline");
    if (cmdline.find(TAILOR_BINARY) != 0 || cmdline.find(command) == std::string::npos ||
        cmdline.find(std::string(1, '\0') + out + '\0') == std::string::npos)
      continue;
    const std::string env = slurp(e.path().string() + "/environ");
    for (size_t at = 0; at < env.size();) {
      const size_t end = env.find('\0', at);
      if (env.compare(at, end - at, want) == 0) return static_cast<pid_t>(std::stol(name));
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return -1;
}

// A rank killed (SIGKILL) mid-sweep: mpirun ends the job; the rerun finishes the rest, resuming
// what was running from its last epoch, and leaves every trial that had finished untouched.
TEST_F(Mpi, AKilledRankLosesOnlyWhatWasRunning) {
  const std::string file = dir("kill.toml"), out = dir("sweep_kill");
  // 200 epochs a trial: with 40 the whole sweep took 1.6 s, and under ctest -j2 the last six
  // trials finished between the check below and the kill in 1 run of 24 ("the sweep finished
  // before the kill"); five times the epochs leave five times that window.
  write_sweep(file, 200);
  const std::string cmd = "exec " + mpirun(2) + "sweep " + file + " --progress none --data " + dir("data") + " --out " +
                          out + " > " + dir("kill.log") + " 2>&1";
  const pid_t job = fork();
  if (job == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until two trials have finished and another has saved an epoch, then kill rank 1.
  const auto finished = [&] {
    std::map<std::string, fs::file_time_type> done;
    if (fs::exists(out + "/trials"))
      for (const auto& e : fs::directory_iterator(out + "/trials"))
        if (fs::exists(e.path() / "summary.json")) done[e.path().filename().string()] = fs::last_write_time(e.path() / "summary.json");
    return done;
  };
  const auto states = [&] {
    int n = 0;
    if (fs::exists(out + "/trials"))
      for (const auto& e : fs::directory_iterator(out + "/trials")) n += fs::exists(e.path() / "resume.state");
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((finished().size() < 2 || states() < 1) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const pid_t victim = rank_pid(1, out);
  ASSERT_GT(victim, 0) << "rank 1 not found";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  int status = 0;
  waitpid(job, &status, 0);
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mpirun reported success after a rank was killed";
  const auto before = finished();
  ASSERT_GE(before.size(), 2u);
  ASSERT_LT(before.size(), 8u) << "the sweep finished before the kill";

  Ran again = run(mpirun(2) + "sweep " + file + " --progress none --data " + dir("data") + " --out " + out);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find(std::to_string(before.size()) + " already done"), std::string::npos) << again.out;
  const auto after = finished();
  EXPECT_EQ(after.size(), 8u);
  for (const auto& [id, when] : before) {
    ASSERT_TRUE(after.count(id));
    EXPECT_EQ(after.at(id), when) << "trial " << id << " was redone";
  }
  RecordProperty("finished_before_kill", static_cast<int>(before.size()));
}

// (trial, epoch) -> how many times search.jsonl records it.
std::map<std::pair<int64_t, int64_t>, int> journal_epochs(const std::string& path) {
  std::map<std::pair<int64_t, int64_t>, int> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_object() && r.value("type", "") == "epoch") ++out[{r.at("trial").get<int64_t>(), r.at("epoch").get<int64_t>()}];
  }
  return out;
}

// tailor search under mpirun: both ranks train trials (trials.csv's ranks column); rank 1 killed
// mid-search ends the job, and the rerun finishes it without recording any epoch twice.
TEST_F(Mpi, SearchOverRanksUsesBothAndAKilledRankLosesNoEpoch) {
  const std::string file = dir("search.toml");
  std::ofstream(file) << "name = \"ranks\"\ntrials = 24\n[base]\nmodel = \"fcn\"\nval = 64\nbatch-size = 32\n"
                         "[space]\nlr = { log_uniform = [1e-4, 1e-2] }\nhidden = { choice = [[8], [16], [32]] }\n"
                         "dropout = { uniform = [0.0, 0.5] }\n[schedule]\nmin-epochs = 2\nmax-epochs = 32\neta = 2\n";
  const std::string whole = dir("search_whole");
  Ran r = run(mpirun(2) + "search " + file + " --progress none --data " + dir("data") + " --out " + whole);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("search ranks: 24 trials"), std::string::npos) << r.out;
  const std::string trials = slurp(whole + "/trials.csv");
  std::set<std::string> ranks;
  std::istringstream in(trials);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream cell(line.substr(line.rfind(',') + 1));
    for (std::string rank; cell >> rank;) ranks.insert(rank);
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1"})) << trials;
  for (const auto& [key, n] : journal_epochs(whole + "/search.jsonl")) EXPECT_EQ(n, 1);

  const std::string out = dir("search_kill");
  const std::string cmd = "exec " + mpirun(2) + "search " + file + " --progress none --data " + dir("data") + " --out " +
                          out + " > " + dir("search_kill.log") + " 2>&1";
  const pid_t job = fork();
  if (job == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (journal_epochs(out + "/search.jsonl").size() < 40 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const pid_t victim = rank_pid(1, out, "search");
  ASSERT_GT(victim, 0) << "rank 1 not found";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  int status = 0;
  waitpid(job, &status, 0);
  const auto before = journal_epochs(out + "/search.jsonl");
  Ran again = run(mpirun(2) + "search " + file + " --progress none --data " + dir("data") + " --out " + out);
  ASSERT_EQ(again.code, 0) << again.err;
  const auto after = journal_epochs(out + "/search.jsonl");
  for (const auto& [key, n] : after) EXPECT_EQ(n, 1) << "trial " << key.first << " epoch " << key.second << " recorded twice";
  for (const auto& [key, n] : before) EXPECT_TRUE(after.count(key));
  EXPECT_GT(after.size(), before.size());
  RecordProperty("epochs_before_kill", static_cast<int>(before.size()));
}

// 50 steps of SGD (5 epochs of 10 global batches of 64) on 2 and 3 ranks against one process:
// the same weights within 1e-5 relative; only the order of the gradient sums differs. Adam's
// figure is printed beside it.
TEST_F(Mpi, DataParallelTrainingMatchesOneProcess) {
  for (const char* optimizer : {"sgd --lr 0.05", "adam --lr 0.01"}) {
    const std::string args = std::string("train --model fcn --hidden 32,16 --no-batchnorm --dropout 0 --optimizer ") +
                             optimizer + " --schedule constant --batch-size 64 --epochs 5 --val 0 --threads 1 "
                             "--progress none --data " + dir("data") + " --out ";
    const std::string name = std::string(optimizer).substr(0, std::string(optimizer).find(' '));
    Ran one = tailor(args + dir("dp_one_" + name));
    ASSERT_EQ(one.code, 0) << one.err;
    EXPECT_EQ(read_checkpoint(dir("dp_one_" + name) + "/model.ckpt").meta.at("steps"), 50);
    for (int ranks : {2, 3}) {
      const std::string out = dir("dp_" + name + std::to_string(ranks));
      Ran r = run(mpirun(ranks) + args + out);
      ASSERT_EQ(r.code, 0) << r.err;
      const double rel = relative_difference(dir("dp_one_" + name) + "/model.ckpt", out + "/model.ckpt");
      std::printf("%s, %d ranks, 50 steps: weights within %.3g (relative) of one process\n", name.c_str(), ranks, rel);
      RecordProperty(name + "_" + std::to_string(ranks) + "_ranks", std::to_string(rel));
      EXPECT_LT(rel, 1e-5) << name << ", " << ranks << " ranks";
      EXPECT_NE(slurp(out + "/config.toml").find("world_size = " + std::to_string(ranks) + "\n"), std::string::npos);
      EXPECT_FALSE(fs::exists(out + "/resume.state"));
    }
    // The same seed, world size and threads: bit-identical.
    Ran again = run(mpirun(2) + args + dir("dp_again_" + name));
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(slurp(dir("dp_again_" + name) + "/model.ckpt"), slurp(dir("dp_" + name + "2") + "/model.ckpt"));
  }
}

// Data-parallel steps in one process are mpirun's ranks in threads: 2 threads (2 replicas of 32
// images a batch) give the weights, batch-norm statistics and training losses of 2 ranks of 1
// thread each, bit for bit, with batch norm, dropout and augmentation drawing per replica.
TEST_F(Mpi, DataParallelThreadsAreRanksBitForBit) {
  const std::string args = "train --model cnn --channels 4,8 --hidden 16 --dropout 0.2 --shift 1 --batch-size 64 "
                           "--epochs 2 --val 0 --seed 4 --progress none --data " + dir("data") + " --out ";
  Ran threads = tailor(args + dir("dp_threads") + " --threads 2");
  ASSERT_EQ(threads.code, 0) << threads.err;
  ASSERT_NE(slurp(dir("dp_threads") + "/config.toml").find("replicas = 2\n"), std::string::npos);
  Ran ranks = run(mpirun(2) + args + dir("dp_ranks") + " --threads 1");
  ASSERT_EQ(ranks.code, 0) << ranks.err;
  expect_same_arrays(dir("dp_threads") + "/model.ckpt", dir("dp_ranks") + "/model.ckpt");
  // The training columns (loss and accuracy); evaluation runs on 2 threads against 1.
  const auto train_columns = [](const std::string& metrics) {
    std::istringstream in(metrics);
    std::string line, out;
    while (std::getline(in, line)) {
      std::stringstream cols(line);
      std::string epoch, loss, acc;
      std::getline(cols, epoch, ',');
      std::getline(cols, loss, ',');
      std::getline(cols, acc, ',');
      out += epoch + "," + loss + "," + acc + "\n";
    }
    return out;
  };
  EXPECT_EQ(train_columns(slurp(dir("dp_threads") + "/metrics.csv")), train_columns(slurp(dir("dp_ranks") + "/metrics.csv")));
  // Off: the batch goes through the layers whole, and the weights differ.
  Ran off = tailor(args + dir("dp_off") + " --threads 2 --data-parallel off");
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_NE(slurp(dir("dp_off") + "/config.toml").find("replicas = 1\n"), std::string::npos);
  EXPECT_NE(read_checkpoint(dir("dp_off") + "/model.ckpt").weights, read_checkpoint(dir("dp_threads") + "/model.ckpt").weights);
}

// The same for a CNN of stages (residual blocks with a strided projection, depthwise-separable
// convolutions, global average pooling) with --ema: its averages too.
TEST_F(Mpi, StagedCnnThreadsAreRanksBitForBit) {
  const std::string args = "train --arch '4,max | 6x2,res,s2 | 6x2,sep,res | gap' --ema 0.99 --shift 1 --batch-size 64 "
                           "--epochs 2 --val 0 --seed 5 --progress none --data " + dir("data") + " --out ";
  Ran threads = tailor(args + dir("st_threads") + " --threads 2");
  ASSERT_EQ(threads.code, 0) << threads.err;
  Ran ranks = run(mpirun(2) + args + dir("st_ranks") + " --threads 1");
  ASSERT_EQ(ranks.code, 0) << ranks.err;
  expect_same_arrays(dir("st_threads") + "/model.ckpt", dir("st_ranks") + "/model.ckpt");
}

// With batch norm (statistics per rank, averaged after each epoch) and dropout: the accuracy of
// 3 epochs of FCN-100k on Fashion-MNIST within half a point of one process's, on the mean of two
// seeds (measured per seed: 2 ranks 0.2-0.4 points lower, batch norm seeing 32 images, not 64).
TEST_F(Mpi, DataParallelWithBatchNormReachesTheSameAccuracy) {
  if (!fs::exists(kDefaultDataDir)) GTEST_SKIP() << "needs dataset-fashion-mnist";
  double one = 0, two = 0;
  for (int seed : {1, 2}) {
    const std::string args = "train --model fcn --weights 100k --epochs 3 --threads 1 --progress none --seed " +
                             std::to_string(seed) + " --out ";
    const std::string a = dir("bn_one" + std::to_string(seed)), b = dir("bn_two" + std::to_string(seed));
    Ran r1 = tailor(args + a);
    ASSERT_EQ(r1.code, 0) << r1.err;
    Ran r2 = run(mpirun(2) + args + b);
    ASSERT_EQ(r2.code, 0) << r2.err;
    const double x = nlohmann::json::parse(slurp(a + "/summary.json"))["test_acc"];
    const double y = nlohmann::json::parse(slurp(b + "/summary.json"))["test_acc"];
    std::printf("FCN-100k with batch norm, 3 epochs, seed %d: test accuracy %.2f%% (one process), %.2f%% (2 ranks)\n",
                seed, x, y);
    one += x / 2;
    two += y / 2;
  }
  EXPECT_LE(std::fabs(one - two), 0.5) << "mean of two seeds: " << one << "% against " << two << "%";
}

// What data-parallel training refuses, with one line each.
TEST_F(Mpi, DataParallelRefusalsAreOneLine) {
  Ran r = run(mpirun(2) + "train --model fcn --hidden 8 --batch-size 1 --val 0 --progress none --data " + dir("data") +
              " --out " + dir("dp_bad"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--batch-size 1 is smaller than the 2 ranks"), std::string::npos) << r.err;
  Ran plain = tailor("train --model fcn --hidden 8 --epochs 1 --val 0 --progress none --data " + dir("data") + " --out " +
                     dir("dp_plain"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(plain.out.find("ranks"), std::string::npos) << "started plainly, tailor knows of no ranks";
}

}  // namespace
}  // namespace tailor
