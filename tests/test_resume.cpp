// `train --resume`: runs killed with SIGKILL at random moments (mid-epoch, mid-write) and resumed
// end bit for bit where an uninterrupted run ends: model.ckpt, metrics.csv and summary.json
// (all but their times). Also: what --resume refuses, and sweeps that resume a killed trial.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "tiny_data.hpp"
#include "train/checkpoint.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"
#include "util/dir_lock.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::Ran;
using testing::run_tailor;
using testing::slurp;
using Clock = std::chrono::steady_clock;

// metrics.csv without its three time columns (epoch_seconds, elapsed_seconds, images_per_second).
std::string metrics_without_times(const std::string& path) {
  std::istringstream in(slurp(path));
  std::string line, out;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream s(line);
    for (std::string c; std::getline(s, c, ',');) cols.push_back(c);
    if (cols.size() > 7) cols.resize(7);
    for (const auto& c : cols) out += c + ",";
    out += "\n";
  }
  return out;
}

nlohmann::json summary_without_times(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(slurp(path));
  for (const char* k : {"train_seconds", "wall_seconds", "peak_rss_mb"}) j.erase(k);
  return j;
}

class Resume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_resume_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 6000, 300, 12, 3);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static Ran tailor(const std::string& args) { return run_tailor(args, root_); }
  static std::string dir(const std::string& name) { return root_ + "/" + name; }

  // Starts `tailor train ARGS` (output discarded) and returns its pid.
  static pid_t start(const std::string& args) {
    const std::string cmd = "exec " + std::string(TAILOR_BINARY) + " " + args + " > /dev/null 2>&1";
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }

  // Finished epochs in RUN/metrics.csv (its rows after the header).
  static size_t metrics_rows(const std::string& run) {
    std::ifstream in(run + "/metrics.csv");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    return lines > 0 ? lines - 1 : 0;
  }

  // Trains `args` into `name` uninterrupted, then `kills` times into other directories, each
  // killed (SIGKILL) just after an early finished epoch, resumed, killed again at a random moment
  // within the reference run's duration, and resumed until done; every result must equal the
  // reference's.
  // `resume_threads` (0: none) is given to every resume: a data-parallel run's result must not
  // depend on it.
  static void kill_and_resume(const std::string& name, const std::string& args, int kills, std::mt19937& gen,
                              int threads = 1, int resume_threads = 0) {
    const std::string common = args + " --threads " + std::to_string(threads) + " --progress none --data " + dir("data");
    const std::string resume_flags =
        " --progress none" + (resume_threads > 0 ? " --threads " + std::to_string(resume_threads) : std::string());
    const auto t0 = Clock::now();
    Ran ref = tailor("train " + common + " --out " + dir(name + "-ref"));
    ASSERT_EQ(ref.code, 0) << ref.err;
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    int interrupted = 0, mid_epoch_state = 0, continued = 0;
    for (int k = 0; k < kills; ++k) {
      const std::string out = dir(name + "-" + std::to_string(k));
      SCOPED_TRACE(out);
      std::string cmd = "train " + common + " --out " + out;
      std::string kept_rows;  // metrics rows written before a kill
      for (int attempt = 0;; ++attempt) {
        const pid_t pid = start(cmd);
        int status = 0;
        bool reaped = false;
        if (attempt == 0) {
          // Killed within a few milliseconds after its 1st, 2nd or 3rd finished epoch: a time drawn
          // from the reference run's length misses them all when the machine is busier now than
          // it was then (ctest -j2 beside mpirun).
          const size_t rows = 1 + gen() % 3;
          while (!(reaped = waitpid(pid, &status, WNOHANG) == pid) && metrics_rows(out) < rows)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          if (!reaped) {
            std::this_thread::sleep_for(std::chrono::milliseconds(gen() % 20));
            ::kill(pid, SIGKILL);
          }
        } else if (attempt == 1) {
          // Killed at a random moment (the first 20% of a run is mostly start-up: loading the data).
          std::uniform_real_distribution<double> when(0.2 * seconds, 0.6 * seconds);
          std::this_thread::sleep_for(std::chrono::duration<double>(when(gen)));
          ::kill(pid, SIGKILL);
        }  // the third attempt runs to its end
        if (!reaped) waitpid(pid, &status, 0);
        if (WIFEXITED(status)) {
          ASSERT_EQ(WEXITSTATUS(status), 0) << cmd;
          break;  // it finished before the kill
        }
        ++interrupted;
        if (fs::exists(out + "/resume.state")) {
          ++mid_epoch_state;
          // The finished rows, times included, must survive into the end result: proof that the
          // run continued rather than started again (which would also end in the same bytes).
          // The last row is left out: a kill between the two writes leaves it unconfirmed.
          const std::string m = slurp(out + "/metrics.csv");
          const size_t last_row = m.rfind('\n', m.size() - 2);
          if (std::count(m.begin(), m.end(), '\n') >= 3) kept_rows = m.substr(0, last_row + 1);
        }
        // Killed before config.toml was written, there is no run yet: start it again, as a user would.
        if (fs::exists(out + "/config.toml")) cmd = "train --resume " + out + resume_flags;
      }
      // Whatever state the kills left, one more resume (or the finished run's report) ends it.
      Ran last = tailor("train --resume " + out + resume_flags);
      ASSERT_EQ(last.code, 0) << last.err;
      if (resume_threads == 0) {
        EXPECT_EQ(slurp(out + "/model.ckpt"), slurp(dir(name + "-ref") + "/model.ckpt"));
      } else {  // the same arrays; the metadata names the threads of the session that finished
        const Checkpoint got = read_checkpoint(out + "/model.ckpt"), want = read_checkpoint(dir(name + "-ref") + "/model.ckpt");
        EXPECT_TRUE(got.weights == want.weights && got.stats == want.stats && got.optim_state == want.optim_state);
        EXPECT_EQ(got.meta.at("threads"), resume_threads);
      }
      EXPECT_EQ(metrics_without_times(out + "/metrics.csv"), metrics_without_times(dir(name + "-ref") + "/metrics.csv"));
      nlohmann::json got = summary_without_times(out + "/summary.json"), want = summary_without_times(dir(name + "-ref") + "/summary.json");
      if (resume_threads > 0) got.erase("threads"), want.erase("threads");
      EXPECT_EQ(got, want);
      EXPECT_FALSE(fs::exists(out + "/resume.state"));
      if (!kept_rows.empty()) {
        EXPECT_EQ(slurp(out + "/metrics.csv").substr(0, kept_rows.size()), kept_rows) << "restarted, not resumed";
        ++continued;
      }
    }
    RecordProperty(name, std::to_string(interrupted) + " kills, " + std::to_string(mid_epoch_state) +
                             " of them after a finished epoch; " + std::to_string(continued) +
                             " runs checked to continue their rows; reference run " + std::to_string(seconds) + " s");
    EXPECT_GT(mid_epoch_state, 0) << "no kill came after a finished epoch";
  }

  static std::string root_;
};
std::string Resume::root_;

TEST_F(Resume, KilledFcnWithDropoutAndAugmentationResumesBitForBit) {
  std::mt19937 gen(1);
  kill_and_resume("fcn", "--model fcn --hidden 64,32 --dropout 0.3 --shift 1 --flip --epochs 10 --batch-size 16 --val 200", 3, gen);
}

TEST_F(Resume, KilledCnnWithDropoutAndAugmentationResumesBitForBit) {
  std::mt19937 gen(2);
  kill_and_resume("cnn", "--model cnn --channels 4,8 --hidden 16 --dropout 0.3 --shift 1 --epochs 6 --val 200", 3, gen);
}

// Data-parallel steps (2 threads, 32 images of each batch of 64 a replica): every replica's
// dropout and augmentation streams continue, and a resume on 1 thread runs both replicas there
// to the same bytes.
TEST_F(Resume, KilledDataParallelCnnResumesBitForBit) {
  const std::string args = "--model cnn --channels 4,8 --hidden 16 --dropout 0.3 --shift 1 --batch-size 64 --epochs 8 --val 200";
  std::mt19937 gen(3);
  kill_and_resume("dp", args, 2, gen, 2);
  EXPECT_NE(slurp(dir("dp-ref") + "/config.toml").find("replicas = 2\n"), std::string::npos);
  kill_and_resume("dp1", args, 1, gen, 2, 1);
}

// A CNN of stages (residual, separable, strided, GAP) with the recipes that keep state or draw
// randomness (--ema's averages in the state, --erase's rectangles, --tta flip's evaluations),
// data-parallel on 2 threads.
TEST_F(Resume, KilledStagedCnnWithRecipesResumesBitForBit) {
  std::mt19937 gen(4);
  kill_and_resume("staged", "--arch '4,max | 6x2,res,s2 | 8x2,sep,res | gap' --dropout 0.1 --shift 1 --flip --erase 0.5 "
                            "--ema 0.99 --tta flip --batch-size 64 --epochs 6 --val 200", 2, gen, 2);
}

// Knowledge distillation (--teacher): a resumed run computes its teacher's logits again from the
// same checkpoint, to the same bits. The student sees the pictures at 8x8, the teacher at its own
// 12x12, with --flip (allowed: the teacher averages each picture with its mirror).
TEST_F(Resume, KilledStudentOfATeacherResumesBitForBit) {
  const std::string common = " --val 200 --threads 1 --progress none --data " + dir("data");
  Ran t = tailor("train --model cnn --channels 4 --hidden 8 --tta flip --epochs 2 --seed 1" + common + " --out " +
                 dir("teacher-1"));
  ASSERT_EQ(t.code, 0) << t.err;
  std::mt19937 gen(5);
  const std::string student = "--model fcn --hidden 16 --image-size 8 --flip --epochs 8 --batch-size 16 --val 200";
  kill_and_resume("student", student + " --teacher " + dir("teacher-{seed}") + " --distill-weight 0.7 --distill-temperature 2",
                  2, gen);
  // Data-parallel (2 replicas) and resumed on 1 thread: the teacher's logits do not depend on it.
  kill_and_resume("student-dp", "--model fcn --hidden 16 --image-size 8 --epochs 16 --batch-size 64 --val 200 --teacher " +
                  dir("teacher-{seed}"), 2, gen, 2, 1);
  // config.toml names the teacher of seed 1, absolute, and the teacher changed what was learnt.
  EXPECT_NE(slurp(dir("student-ref") + "/config.toml").find("teacher = '" + dir("teacher-1") + "'"), std::string::npos);
  ASSERT_EQ(tailor("train " + student + common + " --out " + dir("alone")).code, 0);
  EXPECT_NE(read_checkpoint(dir("alone") + "/model.ckpt").weights, read_checkpoint(dir("student-ref") + "/model.ckpt").weights);
  // At --distill-weight 0 the teacher's term is nothing: the same bits as without a teacher.
  ASSERT_EQ(tailor("train " + student + common + " --teacher " + dir("teacher-1") + " --distill-weight 0 --out " +
                   dir("weight0")).code, 0);
  EXPECT_EQ(read_checkpoint(dir("alone") + "/model.ckpt").weights, read_checkpoint(dir("weight0") + "/model.ckpt").weights);
  EXPECT_EQ(metrics_without_times(dir("alone") + "/metrics.csv"), metrics_without_times(dir("weight0") + "/metrics.csv"));
}

// A teacher that cannot teach this run: one line naming --teacher, nothing trained.
TEST_F(Resume, TeachersThatDoNotFitAreOneClearLine) {
  const std::string common = " --epochs 1 --val 200 --threads 1 --progress none --data " + dir("data");
  ASSERT_EQ(tailor("train --model fcn --hidden 8" + common + " --out " + dir("plain-teacher")).code, 0);
  const std::string fcn = "train --model fcn --hidden 8" + common + " --out " + dir("refused") + " --teacher ";
  expect_one_line_error(tailor(fcn + dir("no-such-run")), "--teacher");
  expect_one_line_error(tailor(fcn + dir("plain-teacher") + " --shift 1"), "--teacher cannot be combined with --shift");
  expect_one_line_error(tailor(fcn + dir("plain-teacher") + " --erase 0.5"), "--erase");
  expect_one_line_error(tailor(fcn + dir("plain-teacher") + " --flip"), "--tta flip");
  expect_one_line_error(tailor(fcn + dir("plain-teacher") + " --distill-weight 1.5"), "--distill-weight");
  expect_one_line_error(tailor(fcn + dir("plain-teacher") + " --distill-temperature 0.5"), "--distill-temperature");
  EXPECT_FALSE(fs::exists(dir("refused") + "/model.ckpt"));
  // Another data set's teacher (4 classes against 3).
  testing::write_tiny_dataset(dir("data4"), 600, 100, 12, 4);
  ASSERT_EQ(tailor("train --model fcn --hidden 8 --epochs 1 --val 100 --progress none --data " + dir("data4") +
                   " --out " + dir("teacher4")).code, 0);
  expect_one_line_error(tailor(fcn + dir("teacher4")), "4 classes");
  // A teacher of another seed (another validation split) is used, with a warning that says so.
  Ran warned = tailor("train --model fcn --hidden 8 --seed 2" + common + " --out " + dir("seed2") + " --teacher " +
                      dir("plain-teacher"));
  EXPECT_EQ(warned.code, 0) << warned.err;
  EXPECT_NE(warned.err.find("warning: --teacher"), std::string::npos) << warned.err;
  // So is one of the same seed and another --val; one of the same split is used without a word.
  warned = tailor("train --model fcn --hidden 8 --epochs 1 --val 300 --threads 1 --progress none --data " + dir("data") +
                  " --out " + dir("val300") + " --teacher " + dir("plain-teacher"));
  EXPECT_EQ(warned.code, 0) << warned.err;
  EXPECT_NE(warned.err.find("held out 200 validation images with seed 1, this run 300"), std::string::npos) << warned.err;
  Ran quiet = tailor("train --model fcn --hidden 8" + common + " --out " + dir("same-split") + " --teacher " +
                     dir("plain-teacher"));
  EXPECT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
}

// When a step is data-parallel, and what an older run's config.toml (without the keys) reads as:
// the layers' threads, as it trained.
TEST(DataParallel, ReplicasPerThreadWhenEachSliceHolds32Images) {
  EXPECT_EQ(step_replicas(2, 64, true), 2);
  EXPECT_EQ(step_replicas(2, 63, true), 1);
  EXPECT_EQ(step_replicas(4, 128, true), 4);
  EXPECT_EQ(step_replicas(4, 64, true), 1);
  EXPECT_EQ(step_replicas(1, 256, true), 1);
  EXPECT_EQ(step_replicas(2, 64, false), 1);
  TrainConfig c;
  c.replicas = 2;
  std::string toml = config_to_toml(c, "");
  EXPECT_EQ(config_from_toml(toml, "config.toml").replicas, 2);
  for (const char* key : {"data_parallel = 'auto'\n", "replicas = 2\n"}) {
    const size_t at = toml.find(key);
    ASSERT_NE(at, std::string::npos) << key << " in\n" << toml;
    toml.erase(at, std::strlen(key));
  }
  const TrainConfig old = config_from_toml(toml, "config.toml");
  EXPECT_FALSE(old.data_parallel);
  EXPECT_EQ(old.replicas, 1);
}

// With --patience the result is the best epoch's weights with that epoch's optimizer state.
TEST_F(Resume, KilledRunsWithPatienceResumeBitForBit) {
  std::mt19937 gen(3);
  kill_and_resume("fcn-patience", "--model fcn --hidden 64 --lr 0.01 --batch-size 16 --patience 3 --epochs 20 --val 200", 2, gen);
  kill_and_resume("cnn-patience", "--model cnn --channels 4,8 --hidden 16 --lr 0.02 --batch-size 16 --patience 2 --epochs 10 --val 200",
                  2, gen);
}

// Ctrl-C (SIGINT) mid-epoch: the run stops at a step, says how to continue, keeps the last
// finished epoch's state and ends by the signal (the shell's 130); resumed, it ends bit for bit as
// a run never stopped. SIGTERM does the same (143).
TEST_F(Resume, InterruptedRunSaysHowToContinueAndResumesBitForBit) {
  const std::string common = "--model fcn --hidden 64,32 --dropout 0.3 --shift 1 --epochs 12 --batch-size 16 --val 200 "
                             "--threads 1 --progress none --data " + dir("data");
  Ran ref = tailor("train " + common + " --out " + dir("int-ref"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  for (int signal : {SIGINT, SIGTERM}) {
    const std::string out = dir(signal == SIGINT ? "int" : "term"), err = out + ".err";
    const std::string cmd = "exec " + std::string(TAILOR_BINARY) + " train " + common + " --out " + out +
                            " > /dev/null 2> " + err;
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    bool reaped = false;
    while (!(reaped = waitpid(pid, &status, WNOHANG) == pid) && metrics_rows(out) < 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_FALSE(reaped) << "the run ended before it could be interrupted; make it longer";
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // into the next epoch's steps
    ::kill(pid, signal);
    waitpid(pid, &status, 0);
    // It stopped, said so, and then ended by the signal, as the shell expects of a program that
    // was interrupted (status 130 or 143 there).
    ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), signal);
    const std::string said = slurp(err);
    const size_t kept = metrics_rows(out);
    EXPECT_EQ(said, "tailor: interrupted after epoch " + std::to_string(kept) + ": continue with tailor train --resume " +
                        out + "\n");
    EXPECT_TRUE(fs::exists(out + "/resume.state"));
    EXPECT_FALSE(fs::exists(out + "/summary.json")) << "an interrupted run is not finished";
    if (signal == SIGTERM) continue;
    Ran resumed = tailor("train --resume " + out + " --progress none");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("stopped: epochs after 12 epochs"), std::string::npos) << resumed.out;
    EXPECT_EQ(slurp(out + "/model.ckpt"), slurp(dir("int-ref") + "/model.ckpt"));
    EXPECT_EQ(metrics_without_times(out + "/metrics.csv"), metrics_without_times(dir("int-ref") + "/metrics.csv"));
  }
}

// One writer per run directory: a second `train` into a directory in use is refused with the
// holder named, and leaves the run alone; after `kill -9` of the holder the kernel has dropped the
// lock and --resume finishes the run.
TEST_F(Resume, ASecondWriterIsRefusedAndAKilledHolderLeavesNoLock) {
  const std::string out = dir("held");
  const std::string args = "train --model fcn --hidden 64,32 --epochs 400 --batch-size 16 --val 200 --threads 1 "
                           "--progress none --data " + dir("data") + " --out " + out;
  const pid_t pid = start(args);
  int status = 0;
  bool reaped = false;
  while (!(reaped = waitpid(pid, &status, WNOHANG) == pid) && metrics_rows(out) < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_FALSE(reaped) << "the run ended before a second writer could try";
  const std::string config = slurp(out + "/config.toml");
  Ran second = tailor(args + " --seed 2");
  expect_one_line_error(second, "run directory " + out + " is in use by process " + std::to_string(pid));
  expect_one_line_error(tailor("train --resume " + out), "is in use by process " + std::to_string(pid));
  EXPECT_EQ(slurp(out + "/config.toml"), config);
  ASSERT_NE(waitpid(pid, &status, WNOHANG), pid) << "the holder ended before the checks did; make it longer";
  ::kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  Ran resumed = tailor("train --resume " + out + " --progress none");
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(out + "/summary.json"));
}

// Two holders in one process (two threads, two trainings from Python) exclude each other too, and
// a sweep directory is held as a run directory is.
TEST_F(Resume, DirectoryLocksHoldWithinAProcessAndForSweeps) {
  const std::string d = dir("locked");
  {
    DirLock first(d, "run directory");
    EXPECT_TRUE(first.held());
    std::string message;
    std::thread other([&] {
      try {
        DirLock second(d, "run directory");
      } catch (const Error& e) {
        message = e.what();
      }
    });
    other.join();
    EXPECT_NE(message.find("is in use by process " + std::to_string(::getpid())), std::string::npos) << message;
    std::ofstream(dir("locked.toml")) << "name = \"l\"\n[base]\nmodel = \"fcn\"\nhidden = [8]\nepochs = 1\n";
    expect_one_line_error(tailor("sweep " + dir("locked.toml") + " --out " + d + " --progress none --data " + dir("data")),
                          "sweep directory " + d + " is in use");
    expect_one_line_error(tailor("train --model fcn --hidden 8 --epochs 1 --out " + d + " --data " + dir("data")),
                          "run directory " + d + " is in use");
  }
  DirLock again(d, "run directory");  // released with the first
  EXPECT_TRUE(again.held());
}

TEST_F(Resume, FinishedRunIsReportedAndLeftAlone) {
  const std::string run = dir("done");
  ASSERT_EQ(tailor("train --model fcn --hidden 8 --epochs 1 --val 100 --progress none --data " + dir("data") +
                   " --out " + run).code, 0);
  const std::string before = slurp(run + "/model.ckpt");
  Ran r = tailor("train --resume " + run);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("finished"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(run + "/model.ckpt"), before);
  // The run's own figure, written by train and again by `report RUN`.
  EXPECT_EQ(slurp(run + "/curves.png").substr(1, 3), "PNG");
  fs::remove(run + "/curves.png");
  Ran rep = tailor("report " + run);
  EXPECT_EQ(rep.code, 0) << rep.err;
  EXPECT_EQ(slurp(run + "/curves.png").substr(1, 3), "PNG");
  EXPECT_FALSE(fs::exists(run + "/curves.png.tmp"));
}

TEST_F(Resume, BadResumesAreOneClearLine) {
  const std::string run = dir("bad");
  ASSERT_EQ(tailor("train --model fcn --hidden 8 --epochs 1 --val 100 --progress none --data " + dir("data") +
                   " --out " + run).code, 0);
  // Settings cannot change on resume; --threads and --progress may be given.
  expect_one_line_error(tailor("train --resume " + run + " --epochs 5"), "--epochs");
  expect_one_line_error(tailor("train --resume " + run + " --lr 0.1"), "--lr");
  expect_one_line_error(tailor("train --resume " + dir("nothing-here")), "config.toml");
  // A damaged state is refused and left as it was, never half-used.
  fs::remove(run + "/summary.json");
  std::string state = slurp(run + "/model.ckpt");
  state[state.size() / 2] ^= 0x21;
  std::ofstream(run + "/resume.state", std::ios::binary) << state;
  expect_one_line_error(tailor("train --resume " + run), "resume.state");
  EXPECT_EQ(slurp(run + "/resume.state"), state);
  // A checkpoint is not a resume state.
  std::ofstream(run + "/resume.state", std::ios::binary) << slurp(run + "/model.ckpt");
  expect_one_line_error(tailor("train --resume " + run), "resume.state");
}

// A sweep killed while a trial runs: the rerun resumes that trial (its log says so) and the
// trial ends as an uninterrupted one does; a diverged trial is not rerun and fails the sweep
// both times.
TEST_F(Resume, SweepResumesAKilledTrialAndKeepsADivergedOneFailed) {
  const std::string file = dir("sweep.toml");
  std::ofstream(file) << "name = \"resume\"\nseeds = [1]\n[base]\nmodel = \"fcn\"\nhidden = [64, 32]\nepochs = 30\n"
                         "val = 200\nbatch-size = 16\n[grid]\nlr = [0.001]\n";
  const std::string sweep = "sweep " + file + " --out " + dir("sweep") + " --progress none --threads-per-job 1 --data " +
                            dir("data");
  const pid_t pid = start(sweep);
  const std::string trials = dir("sweep") + "/trials";
  std::string trial;
  for (int i = 0; i < 600 && trial.empty(); ++i) {  // wait until the trial has finished an epoch
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (fs::exists(trials))
      for (const auto& e : fs::directory_iterator(trials))
        if (fs::exists(e.path() / "resume.state")) trial = e.path().string();
  }
  ::kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(trial.empty()) << "the trial never finished an epoch";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the trial dies with the sweep
  ASSERT_TRUE(fs::exists(trial + "/resume.state"));
  EXPECT_FALSE(fs::exists(trial + "/summary.json"));
  Ran rerun = tailor(sweep);
  ASSERT_EQ(rerun.code, 0) << rerun.out << rerun.err;
  EXPECT_NE(rerun.out.find("1 resumed"), std::string::npos) << rerun.out;
  EXPECT_NE(slurp(trial + "/train.log").find("resumed after epoch"), std::string::npos);
  Ran ref = tailor("train --model fcn --hidden 64,32 --epochs 30 --val 200 --batch-size 16 --lr 0.001 --seed 1 "
                   "--threads 1 --progress none --data " + dir("data") + " --out " + dir("sweep-ref"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  EXPECT_EQ(slurp(trial + "/model.ckpt"), slurp(dir("sweep-ref") + "/model.ckpt"));

  // Divergence: recorded once, then reported as a failure again without rerunning.
  const std::string bad = dir("diverge.toml");
  std::ofstream(bad) << "name = \"diverge\"\nseeds = [1]\n[base]\nmodel = \"fcn\"\nhidden = [16]\nepochs = 3\n"
                        "val = 100\nbatchnorm = false\noptimizer = \"sgd\"\nlr = 1e5\n";
  const std::string run_bad = "sweep " + bad + " --out " + dir("diverge") + " --progress none --data " + dir("data");
  Ran first = tailor(run_bad);
  Ran second = tailor(run_bad);
  EXPECT_EQ(first.code, 1) << first.out << first.err;
  EXPECT_EQ(second.code, 1) << second.out << second.err;
  EXPECT_NE(second.out.find("1 recorded as diverged earlier"), std::string::npos) << second.out;
}

}  // namespace
}  // namespace tailor
