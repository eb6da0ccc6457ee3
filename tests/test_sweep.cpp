// Sweeps: sweep-file errors name file, line and key before anything runs; expansion; a sweep
// killed with SIGKILL and started again finishes without redoing finished trials and without a
// corrupt or duplicated row.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "sweep/references.hpp"
#include "sweep/sweep_file.hpp"
#include "tiny_data.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::run_tailor;
using testing::slurp;

class Sweep : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("tailor_sweep_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 600, 150);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = root_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // Bad sweep file: one line naming FILE:LINE and the key, non-zero exit, no trial started.
  void expect_file_error(const std::string& text, int line, const std::string& key) {
    const std::string path = write("bad.toml", text);
    auto r = run_tailor("sweep " + path + " --out " + root_ + "/bad_out --data " + root_ + "/data", root_);
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_NE(r.err.find(path + ":" + std::to_string(line) + ": key '" + key + "'"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(root_ + "/bad_out/trials")) << "nothing may start";
  }
  std::string root_;
};

TEST_F(Sweep, FileErrorsNameFileLineAndKey) {
  expect_file_error("name = \"x\"\n[base]\nmodel = \"fcn\"\nfrobnicate = 3\n", 4, "frobnicate");  // unknown option
  expect_file_error("name = \"x\"\n[base]\nepochs = \"many\"\n", 3, "epochs");                      // wrong type (value)
  expect_file_error("name = \"x\"\n[base]\nbatchnorm = 1\n", 3, "batchnorm");                       // wrong type (flag)
  expect_file_error("name = \"x\"\n\n[grid]\nlr = []\n", 4, "lr");                                  // empty axis
  expect_file_error("name = \"x\"\n[grid]\noptimizer = [\"adam\", \"adagrad\"]\n", 3, "optimizer");  // refused value
  expect_file_error("name = \"x\"\n[bsae]\nepochs = 3\n", 2, "bsae");                               // unknown table
  expect_file_error("name = \"x\"\n[base]\nout = \"elsewhere\"\n", 3, "out");                       // set by the sweep
  expect_file_error("name = \"x\"\n[[row]]\nepochs = 3\n", 2, "name");                              // row without a name
}

// Published points beside a sweep's own: the file is checked before anything runs, kept in the
// sweep directory, and drawn into accuracy_vs_weights.png (by `sweep` and again by `report`).
TEST_F(Sweep, ReferencesAreCheckedKeptAndDrawn) {
  expect_file_error("name = \"x\"\nreferences = \"missing.csv\"\n", 2, "references");
  expect_file_error("name = \"x\"\nreferences = 3\n", 2, "references");
  write("bad.csv", "label,weights,test_acc,source\nstudy,100k,91.2,here\nstudy,lots,90,there\n");
  expect_file_error("name = \"x\"\n\nreferences = \"bad.csv\"\n", 3, "references");
  {
    const std::string path = write("bad2.toml", "name = \"x\"\nreferences = \"bad.csv\"\n");
    auto r = run_tailor("sweep " + path + " --dry-run", root_);
    EXPECT_NE(r.err.find("bad.csv:3: weights 'lots' is not a count"), std::string::npos) << r.err;
  }

  const std::string refs = "label,weights,test_acc,source\nsomeone's MLP,2.5k,71.5,a paper, table 2\n"
                           "someone's MLP,5000,74,the same paper\n";
  write("refs.csv", refs);
  const std::string file = write("refs.toml", "name = \"refs\"\nreferences = \"refs.csv\"\n[base]\nmodel = \"fcn\"\n"
                                              "hidden = [8]\nepochs = 1\nval = 60\n");
  const std::string out = root_ + "/refs_out";
  // The test runs elsewhere: the CSV's path is relative to the sweep file, not to the working directory.
  auto r = run_tailor("sweep " + file + " --out " + out + " --data " + root_ + "/data --progress none", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(out + "/references.csv"), refs);
  const std::string with = slurp(out + "/figures/accuracy_vs_weights.png");
  ASSERT_EQ(with.rfind("\x89PNG\r\n\x1a\n", 0), 0u);
  // Without the references the figure is another picture; `report` draws them back.
  fs::rename(out + "/references.csv", out + "/kept.csv");
  ASSERT_EQ(run_tailor("report " + out, root_).code, 0);
  EXPECT_NE(slurp(out + "/figures/accuracy_vs_weights.png"), with);
  fs::rename(out + "/kept.csv", out + "/references.csv");
  ASSERT_EQ(run_tailor("report " + out, root_).code, 0);
  EXPECT_EQ(slurp(out + "/figures/accuracy_vs_weights.png"), with);
}

TEST(References, ParseCountsSourcesWithCommasAndNameTheBadLine) {
  auto p = parse_references("label,weights,test_acc,source\n\nA,83k,92.47,notebook, 30 epochs\r\nB,1.5M,93,x\n", "r.csv");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "A");
  EXPECT_EQ(p[0].weights, 83000);
  EXPECT_DOUBLE_EQ(p[0].test_acc, 92.47);
  EXPECT_EQ(p[0].source, "notebook, 30 epochs");
  EXPECT_EQ(p[1].weights, 1500000);
  auto error = [](const std::string& text) {
    try {
      parse_references(text, "r.csv");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("A,83k\n"), "r.csv:1: wants label,weights,test_acc,source");
  EXPECT_EQ(error("A,83k,1,s\nB,9k,ninety,s\n"), "r.csv:2: test_acc 'ninety' is not a number");
  EXPECT_EQ(error("A,83k,101,s\n"), "r.csv:1: test_acc 101 is not a percentage");
  EXPECT_EQ(error(",83k,90,s\n"), "r.csv:1: the label is empty");
}

TEST(SweepFile, ExpandsRowsGridAndSeeds) {
  OptionTable options{{"model", {}}, {"epochs", {}}, {"lr", {}}, {"batchnorm", {true, true}}, {"nesterov", {true, false}}};
  const std::string path = (fs::temp_directory_path() / ("tailor_sweepfile_" + std::to_string(::getpid()) + ".toml")).string();
  std::ofstream(path) << "name = \"t\"\nseeds = [1, 2]\n[base]\nepochs = 3\nbatchnorm = false\nnesterov = false\n"
                         "[[row]]\nname = \"A\"\nmodel = \"fcn\"\n[[row]]\nname = \"B\"\nmodel = \"cnn\"\nepochs = 5\n"
                         "[grid]\nlr = [0.001, 0.01, 0.1]\n";
  SweepSpec s = read_sweep(path, options, [](const std::string&, const std::string&) {});
  fs::remove(path);
  ASSERT_EQ(s.trials.size(), 2u * 3u * 2u);
  EXPECT_EQ(s.out, "runs/t");
  EXPECT_EQ(s.trials[0].row, "A lr=0.001");
  EXPECT_EQ(*s.trials[0].get("epochs"), "3");
  EXPECT_EQ(*s.trials[6].get("epochs"), "5");  // row B overrides base
  // batchnorm = false becomes --no-batchnorm; nesterov = false (no --no- form) is left out.
  const auto args = s.trials[0].args();
  EXPECT_NE(std::find(args.begin(), args.end(), "--no-batchnorm"), args.end());
  EXPECT_EQ(std::find(args.begin(), args.end(), "--nesterov"), args.end());
  // Seeds share a group; every trial has its own id, stable across reads.
  EXPECT_EQ(s.trials[0].group_key(), s.trials[1].group_key());
  std::set<std::string> ids;
  for (const auto& t : s.trials) ids.insert(t.id());
  EXPECT_EQ(ids.size(), s.trials.size());
  EXPECT_EQ(s.trials[0].id().size(), 16u);
}

// teacher = "row:NAME": each seed's trial learns from that row's trial of the same seed; the
// setting keeps its text (so seeds still share a group), the id is resolved per seed.
TEST(SweepFile, TeacherRowsResolvePerSeedAndBadOnesAreOneLine) {
  OptionTable options{{"model", {}}, {"epochs", {}}, {"lr", {}}, {"teacher", {}}};
  const auto check = [](const std::string&, const std::string&) {};
  const std::string path = (fs::temp_directory_path() / ("tailor_teacherfile_" + std::to_string(::getpid()) + ".toml")).string();
  std::ofstream(path) << "name = \"t\"\nseeds = [1, 2]\n[[row]]\nname = \"student\"\nmodel = \"fcn\"\n"
                         "teacher = \"row:big\"\n[[row]]\nname = \"big\"\nmodel = \"cnn\"\n";
  SweepSpec s = read_sweep(path, options, check);
  ASSERT_EQ(s.trials.size(), 4u);
  EXPECT_EQ(s.trials[0].teacher_id, s.trials[2].id());  // student seed 1 -> big seed 1
  EXPECT_EQ(s.trials[1].teacher_id, s.trials[3].id());  // seed 2 -> seed 2
  EXPECT_TRUE(s.trials[2].teacher_id.empty());
  EXPECT_EQ(s.trials[0].group_key(), s.trials[1].group_key());
  const auto refused = [&](const std::string& text, const std::string& needle) {
    std::ofstream(path) << text;
    try {
      read_sweep(path, options, check);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path + ": key 'teacher'"), std::string::npos) << e.what();
    }
  };
  refused("[[row]]\nname = \"s\"\nteacher = \"row:nobody\"\n", "row:nobody names no row");
  refused("[[row]]\nname = \"s\"\nteacher = \"row:big\"\n[[row]]\nname = \"big\"\n[grid]\nlr = [0.1, 0.2]\n",
          "has 2 trials of seed 1");
  refused("[[row]]\nname = \"a\"\nteacher = \"row:b\"\n[[row]]\nname = \"b\"\nteacher = \"row:a\"\n",
          "learns from a row itself");
  fs::remove(path);
}

// A sweep runs the teachers' trials first and hands each student its own seed's teacher.
TEST_F(Sweep, StudentsRunAfterTheirTeachersAndLearnFromTheirSeeds) {
  const std::string file = write("teach.toml", "name = \"teach\"\nseeds = [1, 2]\n[base]\nepochs = 2\nval = 60\n"
                                               "[[row]]\nname = \"student\"\nmodel = \"fcn\"\nhidden = [8]\n"
                                               "teacher = \"row:teacher\"\n[[row]]\nname = \"teacher\"\n"
                                               "model = \"cnn\"\nchannels = [4]\nhidden = [8]\n");
  const std::string out = root_ + "/teach_out";
  // Three at once: without the wait, a student would start beside the two teachers and fail.
  auto r = run_tailor("sweep " + file + " --out " + out + " --data " + root_ + "/data --jobs 3 --threads-per-job 1 "
                      "--progress none", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const SweepSpec spec = read_sweep(file, {{"model", {}}, {"epochs", {}}, {"val", {}}, {"hidden", {}}, {"channels", {}},
                                           {"teacher", {}}},
                                    [](const std::string&, const std::string&) {});
  ASSERT_EQ(spec.trials.size(), 4u);
  for (int k = 0; k < 2; ++k) {
    const std::string student = out + "/trials/" + spec.trials[k].id(), teacher = out + "/trials/" + spec.trials[2 + k].id();
    EXPECT_NE(slurp(student + "/config.toml").find("teacher = '" + fs::absolute(teacher).lexically_normal().string() + "'"),
              std::string::npos)
        << slurp(student + "/config.toml");
    // The student started (wrote its config.toml) after its teacher had finished (its summary.json).
    EXPECT_GE(fs::last_write_time(student + "/config.toml"), fs::last_write_time(teacher + "/summary.json"));
  }
}

TEST_F(Sweep, KilledAndRestartedFinishesWithoutRedoingOrDuplicating) {
  const std::string file = write("kill.toml",
                                 "name = \"kill\"\nseeds = [1, 2, 3]\n[base]\nmodel = \"fcn\"\nhidden = [16]\nepochs = 120\n"
                                 "val = 60\nbatch-size = 16\n[grid]\nlr = [0.001, 0.003]\n");
  const std::string out = root_ + "/kill_out";
  const std::string cmd = std::string(TAILOR_BINARY) + " sweep " + file + " --out " + out + " --data " + root_ +
                          "/data --jobs 1 --threads-per-job 1 --progress none";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill the sweep (SIGKILL) once two trials have finished.
  auto finished = [&] {
    int n = 0;
    if (fs::exists(out + "/trials"))
      for (const auto& d : fs::directory_iterator(out + "/trials")) n += fs::exists(d.path() / "summary.json");
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (finished() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the trial child dies with it
  const int before = finished();
  ASSERT_GE(before, 2);
  ASSERT_LT(before, 6) << "the sweep finished before it could be killed; make the trials longer";
  std::map<std::string, std::string> kept;
  for (const auto& d : fs::directory_iterator(out + "/trials"))
    if (fs::exists(d.path() / "summary.json")) kept[d.path().string()] = slurp((d.path() / "summary.json").string());

  auto r = run_tailor("sweep " + file + " --out " + out + " --data " + root_ + "/data --jobs 2 --threads-per-job 1 "
                      "--progress none", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("6 trials (" + std::to_string(before) + " already done, " + std::to_string(6 - before) + " ran"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(finished(), 6);
  for (const auto& [dir, summary] : kept) EXPECT_EQ(slurp(dir + "/summary.json"), summary) << dir << " was redone";
  // One row per configuration, each with its three seeds, nothing duplicated or torn.
  const std::string csv = slurp(out + "/table.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;  // header + 2 rows
  EXPECT_NE(csv.find("\"base lr=0.001\",fcn,\"fc "), std::string::npos) << csv;  // the widths column
  EXPECT_NE(csv.find("\"base lr=0.003\",fcn,"), std::string::npos) << csv;
  // The tiny set's 8x8 grey pictures are not Fashion-MNIST's input: the widths say what it was.
  EXPECT_NE(csv.find(" on 1x8x8\""), std::string::npos) << csv;
  for (const char* row : {"\"base lr=0.001\"", "\"base lr=0.003\""}) {
    const size_t at = csv.find(row);
    const std::string line = csv.substr(at, csv.find('\n', at) - at);
    EXPECT_NE(line.find(",3,3,"), std::string::npos) << "seeds and finished: " << line;
  }
  // The figures: two PNGs per run, four for the sweep, and the interactive report.
  auto is_png = [](const fs::path& p) { return slurp(p.string()).rfind("\x89PNG\r\n\x1a\n", 0) == 0; };
  for (const auto& d : fs::directory_iterator(out + "/trials")) {
    EXPECT_TRUE(is_png(d.path() / "loss.png")) << d.path();
    EXPECT_TRUE(is_png(d.path() / "val_acc.png")) << d.path();
  }
  for (const char* f : {"train_loss.png", "val_acc.png", "test_acc.png", "accuracy_vs_weights.png"})
    EXPECT_TRUE(is_png(fs::path(out) / "figures" / f)) << f;
  EXPECT_TRUE(fs::exists(out + "/report.html"));
}

// Ctrl-C as a terminal sends it (to the sweep's process group, trials included): no trial starts,
// the running one stops at its last finished epoch, the table of what is done is written, the
// process ends by SIGINT; the same command then finishes the sweep, continuing the stopped trial.
TEST_F(Sweep, InterruptedWritesItsResultsAndContinues) {
  const std::string file = write("int.toml",
                                 "name = \"int\"\nseeds = [1, 2]\n[base]\nmodel = \"fcn\"\nhidden = [16]\nepochs = 1500\n"
                                 "val = 60\nbatch-size = 16\n[grid]\nlr = [0.001, 0.003]\n");
  const std::string out = root_ + "/int_out";
  const std::string cmd = std::string(TAILOR_BINARY) + " sweep " + file + " --out " + out + " --data " + root_ +
                          "/data --jobs 1 --threads-per-job 1 --progress none";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);  // its own process group, as a job of a terminal
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>" + root_ + "/int_err.txt").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  auto count = [&](const char* file_name) {
    int n = 0;
    if (fs::exists(out + "/trials"))
      for (const auto& d : fs::directory_iterator(out + "/trials")) n += fs::exists(d.path() / file_name);
    return n;
  };
  // Once one trial is done and the next has finished an epoch (its resume state exists).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((count("summary.json") < 1 || count("resume.state") < 1) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(-pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  const int done = count("summary.json");
  ASSERT_LT(done, 4) << "the sweep finished before it could be interrupted; make the trials longer";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
  const std::string err = slurp(root_ + "/int_err.txt");
  EXPECT_NE(err.find("interrupted: " + std::to_string(done) + " of 4 trials done, 1 stopped"), std::string::npos) << err;
  EXPECT_NE(err.find("continue with tailor sweep"), std::string::npos) << err;
  EXPECT_TRUE(fs::exists(out + "/table.md"));
  EXPECT_EQ(count("resume.state"), 1) << "the stopped trial keeps its last finished epoch";

  auto r = run_tailor("sweep " + file + " --out " + out + " --data " + root_ + "/data --jobs 2 --threads-per-job 1 "
                      "--progress none", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("4 trials (" + std::to_string(done) + " already done, " + std::to_string(4 - done) +
                       " ran, 0 failed; 1 resumed"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(count("summary.json"), 4);
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// Every shipped sweep file reads and expands (the study's Table 1 has its nine rows).
TEST(ShippedSweeps, AllExperimentFilesRead) {
  const std::string dir = std::string(TAILOR_TEST_DATA) + "/../../experiments";
  const std::string scratch = (std::filesystem::temp_directory_path() / ("tailor_shipped_" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(scratch);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".toml") continue;
    ++files;
    auto r = testing::run_tailor("sweep " + e.path().string() + " --dry-run", scratch);
    EXPECT_EQ(r.code, 0) << e.path() << ": " << r.err;
    if (e.path().stem() == "table1") {
      EXPECT_NE(r.out.find("9 trials"), std::string::npos) << r.out;
    }
  }
  EXPECT_GE(files, 5);
  std::filesystem::remove_all(scratch);
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

// [random]: every distribution, the draws within their ranges, the same draws for the same
// sample_seed, and a draw train refuses reported at the line of its distribution.
TEST(SweepFile, RandomAxes) {
  OptionTable options{{"lr", {false, false, "FLOAT"}}, {"batch-size", {false, false, "INT"}},
                      {"optimizer", {false, false, "TEXT"}}, {"dropout", {false, false, "FLOAT"}}};
  std::vector<std::pair<std::string, std::string>> checked;
  const std::string path = (fs::temp_directory_path() / ("tailor_random_" + std::to_string(::getpid()) + ".toml")).string();
  std::ofstream(path) << "name = \"r\"\n[random]\ntrials = 5\nsample_seed = 3\nlr = { log_uniform = [1e-4, 1e-2] }\n"
                         "batch-size = { int_uniform = [16, 128] }\noptimizer = { choice = [\"adam\", \"sgd\"] }\n"
                         "dropout = { uniform = [0.0, 0.5] }\n";
  auto check = [](const std::string& key, const std::string& value) {
    if (key == "dropout" && std::stod(value) > 0.4) throw Error("too high");
  };
  SweepSpec a = read_sweep(path, options, [](const std::string&, const std::string&) {});
  ASSERT_EQ(a.trials.size(), 5u);
  for (const auto& t : a.trials) {
    const double lr = std::stod(*t.get("lr"));
    const int bs = std::stoi(*t.get("batch-size"));
    EXPECT_TRUE(lr >= 1e-4 * 0.999 && lr <= 1e-2 * 1.001) << lr;
    EXPECT_TRUE(bs >= 16 && bs <= 128) << bs;
    EXPECT_TRUE(*t.get("optimizer") == "adam" || *t.get("optimizer") == "sgd");
  }
  SweepSpec b = read_sweep(path, options, [](const std::string&, const std::string&) {});
  for (size_t i = 0; i < a.trials.size(); ++i) EXPECT_EQ(a.trials[i].id(), b.trials[i].id());
  try {
    // Five draws of U(0, 0.5): at least one is above 0.4 with near certainty for this seed.
    read_sweep(path, options, check);
    FAIL() << "expected the refused draw to be reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":8: key 'dropout'"), std::string::npos) << e.what();
  }
  // Draws below the smallest normal double (found by fuzz_sweep): written and read back, no
  // exception from the conversion.
  std::ofstream(path) << "name = \"r\"\n[random]\ntrials = 4\ndropout = { uniform = [0.0, 1e-320] }\n";
  const SweepSpec tiny = read_sweep(path, options, [](const std::string&, const std::string&) {});
  ASSERT_EQ(tiny.trials.size(), 4u);
  for (const auto& t : tiny.trials) {
    const double d = std::strtod(t.get("dropout")->c_str(), nullptr);
    EXPECT_TRUE(d >= 0 && d <= 1e-320) << *t.get("dropout");
  }
  fs::remove(path);
}

}  // namespace
}  // namespace tailor
