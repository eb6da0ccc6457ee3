// The program as a user meets it: help, bad input (one clear line, non-zero exit, nothing lost),
// run files, eval == summary, determinism, early stopping, predict. Uses a tiny generated data
// set so every case takes well under a second.
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "data/image.hpp"
#include "kernels/kernels.hpp"
#include "tiny_data.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::Ran;
using testing::run_tailor;
using testing::slurp;

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 600, 150);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  Ran tailor(const std::string& args) { return run_tailor(args, root_); }
  // A small FCN on the tiny set; extra flags appended.
  Ran train(const std::string& out, const std::string& extra = "") {
    return tailor("train --model fcn --hidden 16,8 --epochs 3 --lr 0.01 --batch-size 32 --val 60 --threads 1 --progress none --data " +
                  root_ + "/data --out " + root_ + "/" + out + " " + extra);
  }
  static nlohmann::json json_file(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

  static std::string root_;
};
std::string Cli::root_;

TEST_F(Cli, HelpNamesEveryCommandAndOptionDefaults) {
  Ran top = tailor("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* cmd : {"train", "eval", "predict", "summary"}) EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
  Ran tr = tailor("train --help");
  EXPECT_EQ(tr.code, 0);
  for (const char* opt : {"--model", "--weights", "--hidden", "--channels", "--batchnorm", "--dropout", "--activation",
                          "--pool", "--epochs", "--batch-size", "--optimizer", "--lr", "--momentum", "--nesterov", "--weight-decay",
                          "--schedule", "--init", "--seed", "--threads", "--stop-at", "--stop-on", "--patience", "--val",
                          "--data", "--out"})
    EXPECT_NE(tr.out.find(opt), std::string::npos) << opt;
  EXPECT_NE(tr.out.find("=adam"), std::string::npos) << "defaults are shown";
  EXPECT_NE(tr.out.find("/usr/share/datasets/fashion-mnist"), std::string::npos);
}

TEST_F(Cli, BadFlagsAreOneClearLine) {
  expect_one_line_error(tailor("train --bogus"), "--bogus");
  expect_one_line_error(tailor("train --lr abc"), "abc");
  expect_one_line_error(tailor("train --epochs -1"), "--epochs");
  expect_one_line_error(tailor("train --dropout 1.5"), "--dropout");
  expect_one_line_error(tailor("train --optimizer adagrad"), "--optimizer");
  expect_one_line_error(tailor("train --pool median"), "--pool");
  expect_one_line_error(tailor("bench --pool lp3"), "--pool");
  expect_one_line_error(tailor("train --hidden 10,abc --data " + root_ + "/data"), "--hidden");
  expect_one_line_error(tailor("train --nesterov --data " + root_ + "/data"), "--nesterov");
  expect_one_line_error(tailor("frobnicate"), "frobnicate");
}

// TAILOR_ISA forces a path (kernels/isa.hpp): an unknown one is refused in one line before anything
// runs, and a path the CPU runs is named on the run's first line.
TEST_F(Cli, TailorIsaChoosesThePathOrIsOneLine) {
  const std::string bin = std::string(TAILOR_BINARY);
  expect_one_line_error(testing::run_command("TAILOR_ISA=avx3 " + bin + " summary", root_), "TAILOR_ISA='avx3'");
  const Ran r = testing::run_command("TAILOR_ISA=baseline " + bin + " train --model fcn --hidden 8 --epochs 1 --val 0 "
                                     "--progress lines --data " + root_ + "/data --out " + root_ + "/isa", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(kernels baseline, oneDNN sse41)"), std::string::npos) << r.out;
}

// bf16 products in a CNN of stages (grouped, depthwise, strided and 1x1 convolutions), where the
// CPU has them: it trains, and eval reproduces its accuracy.
TEST_F(Cli, StagedCnnTrainsInBf16) {
  if (!kernels::has_bf16()) GTEST_SKIP() << "this CPU has no bf16 dot products";
  const Ran r = tailor("train --arch '8,max | 16x2,res,s2 | 16x2,sep,res | gap' --precision bf16 --epochs 2 --lr 0.01 "
                       "--batch-size 32 --val 60 --threads 1 --progress none --data " + root_ + "/data --out " + root_ + "/bf16");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json s = json_file(root_ + "/bf16/summary.json");
  EXPECT_GT(s.at("test_acc").get<double>(), 60.0);
  const Ran e = tailor("eval " + root_ + "/bf16");
  EXPECT_NE(e.out.find(fmt::format("{:.2f}%", s.at("test_acc").get<double>())), std::string::npos) << e.out;
}

TEST_F(Cli, MissingDataDirectorySaysWhichPackage) {
  Ran r = tailor("train --data " + root_ + "/no_such_dir --out " + root_ + "/r_missing");
  expect_one_line_error(r, "dataset-fashion-mnist");
  EXPECT_NE(r.err.find(root_ + "/no_such_dir"), std::string::npos);
}

TEST_F(Cli, CorruptDataFileIsNamed) {
  const std::string bad = root_ + "/bad_data";
  testing::write_tiny_dataset(bad, 60, 30);
  std::string bytes = slurp(bad + "/train-labels-idx1-ubyte.gz");
  bytes.resize(bytes.size() / 2);  // truncated gzip
  std::ofstream(bad + "/train-labels-idx1-ubyte.gz", std::ios::binary) << bytes;
  expect_one_line_error(tailor("train --data " + bad + " --out " + root_ + "/r_bad"), "train-labels-idx1-ubyte.gz");
}

TEST_F(Cli, BudgetTooSmallForTheFamily) {
  expect_one_line_error(tailor("train --model cnn --weights 50 --val 60 --data " + root_ + "/data --out " + root_ + "/r_small"),
                        "--weights 50");
}

TEST_F(Cli, UnwritableOutputDirectory) {
  std::ofstream(root_ + "/a_file") << "x";
  expect_one_line_error(tailor("train --data " + root_ + "/data --out " + root_ + "/a_file/run"), "a_file/run");
}

TEST_F(Cli, RunFilesEvalAndSummaryAgree) {
  Ran r = train("run1");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string dir = root_ + "/run1";
  const std::string metrics = slurp(dir + "/metrics.csv");
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "epoch,train_loss,train_acc,val_loss,val_acc,test_acc,lr,epoch_seconds,elapsed_seconds,images_per_second");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);  // header + 3 epochs
  const auto s = json_file(dir + "/summary.json");
  for (const char* k : {"weights", "val_acc", "test_acc", "train_seconds", "epochs_run", "stop_reason"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(s["weights"], 64 * 16 + 16 + 32 + 16 * 8 + 8 + 16 + 8 * 3 + 3);
  EXPECT_EQ(s["stop_reason"], "epochs");
  EXPECT_GT(s["test_acc"].get<double>(), 90.0) << "the tiny set is easy";
  const std::string config = slurp(dir + "/config.toml");
  for (const char* k : {"seed = 1", "version = ", "optimizer = 'adam'", "epochs = 3"})
    EXPECT_NE(config.find(k), std::string::npos) << k << "\n" << config;
  EXPECT_FALSE(fs::exists(dir + "/metrics.csv.tmp"));

  Ran e = tailor("eval --json " + dir);
  ASSERT_EQ(e.code, 0) << e.err;
  const auto ej = nlohmann::json::parse(e.out);
  EXPECT_EQ(ej["test_acc"].get<double>(), s["test_acc"].get<double>()) << "eval reproduces summary.json exactly";
  EXPECT_EQ(ej["test_loss"].get<double>(), s["test_loss"].get<double>());
  EXPECT_EQ(ej["count"], 150);
}

TEST_F(Cli, SameSeedSameThreadsIsBitIdentical) {
  ASSERT_EQ(train("det_a", "--model cnn --channels 4,8 --hidden 12 --threads 2 --seed 5").code, 0);
  ASSERT_EQ(train("det_b", "--model cnn --channels 4,8 --hidden 12 --threads 2 --seed 5").code, 0);
  ASSERT_EQ(train("det_c", "--model cnn --channels 4,8 --hidden 12 --threads 2 --seed 6").code, 0);
  const std::string a = slurp(root_ + "/det_a/model.ckpt"), b = slurp(root_ + "/det_b/model.ckpt");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, slurp(root_ + "/det_c/model.ckpt"));
  // Metrics agree in every column but the timings.
  auto strip = [](const std::string& csv) {
    std::string out, line;
    std::istringstream in(csv);
    while (std::getline(in, line)) {
      int commas = 0;
      size_t cut = line.size();
      for (size_t i = 0; i < line.size(); ++i)
        if (line[i] == ',' && ++commas == 7) cut = i;
      out += line.substr(0, cut) + "\n";
    }
    return out;
  };
  EXPECT_EQ(strip(slurp(root_ + "/det_a/metrics.csv")), strip(slurp(root_ + "/det_b/metrics.csv")));
}

// --precision bf16: a CNN whose second convolution (8 input channels) and head run their training
// products in bf16 learns the tiny set as float does, is repeatable, says so in config.toml, and
// evaluates (in float) to what summary.json recorded. Where the CPU lacks bf16, one clear line.
TEST_F(Cli, Bf16PrecisionTrainsAndIsRecorded) {
  const std::string flags = "--model cnn --channels 8,16 --hidden 12 --threads 2 --seed 5 --precision bf16";
  Ran a = train("bf16_a", flags);
  if (!kernels::has_bf16()) {
    expect_one_line_error(a, "--precision bf16");
    return;
  }
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(train("bf16_b", flags).code, 0);
  ASSERT_EQ(train("fp32_c", "--model cnn --channels 8,16 --hidden 12 --threads 2 --seed 5").code, 0);
  const std::string ca = slurp(root_ + "/bf16_a/model.ckpt");
  EXPECT_EQ(ca, slurp(root_ + "/bf16_b/model.ckpt")) << "bf16 runs repeat bit for bit";
  EXPECT_NE(ca, slurp(root_ + "/fp32_c/model.ckpt")) << "and differ from float ones";
  EXPECT_NE(slurp(root_ + "/bf16_a/config.toml").find("precision = 'bf16'"), std::string::npos);
  EXPECT_NE(slurp(root_ + "/fp32_c/config.toml").find("precision = 'fp32'"), std::string::npos);
  const auto s = json_file(root_ + "/bf16_a/summary.json");
  EXPECT_GT(s["test_acc"].get<double>(), 90.0) << "the tiny set is easy";
  Ran e = tailor("eval --json " + root_ + "/bf16_a");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(nlohmann::json::parse(e.out)["test_acc"].get<double>(), s["test_acc"].get<double>());
  expect_one_line_error(tailor("train --precision fp16"), "--precision");
}

TEST_F(Cli, StopAtTargetAccuracy) {
  ASSERT_EQ(train("stop", "--epochs 50 --stop-at 60 --stop-on test").code, 0);
  const auto s = json_file(root_ + "/stop/summary.json");
  EXPECT_EQ(s["stop_reason"], "target_accuracy");
  EXPECT_LT(s["epochs_run"].get<int>(), 50);
  EXPECT_GE(s["test_acc"].get<double>(), 60.0);
}

TEST_F(Cli, PatienceRestoresTheBestWeights) {
  ASSERT_EQ(train("pat", "--epochs 40 --patience 2 --lr 0.05").code, 0);
  const auto s = json_file(root_ + "/pat/summary.json");
  ASSERT_EQ(s["stop_reason"], "patience") << s.dump();
  EXPECT_LT(s["best_epoch"].get<int>(), s["epochs_run"].get<int>());
  Ran e = tailor("eval --json " + root_ + "/pat");
  EXPECT_EQ(nlohmann::json::parse(e.out)["test_acc"].get<double>(), s["test_acc"].get<double>());
}

TEST_F(Cli, DivergenceStopsWithAMessageAndKeepsRows) {
  // A one-cycle schedule warms up from lr/25, so a huge lr diverges only after some epochs; which
  // lr does so depends on the arithmetic, so several are tried: every run that diverges must say
  // so in one line and keep its rows, and one of them must have finished an epoch first.
  int diverged = 0, kept_rows = 0;
  for (const char* lr : {"1e4", "3e4", "1e5", "3e5", "1e6"}) {
    const std::string out = std::string("nan_") + lr;
    Ran r = train(out, std::string("--no-batchnorm --optimizer sgd --momentum 0.99 --schedule onecycle --epochs 40 --lr ") + lr);
    const auto s = json_file(root_ + "/" + out + "/summary.json");
    if (s["stop_reason"] != "diverged") continue;
    ++diverged;
    expect_one_line_error(r, "diverged");
    const std::string metrics = slurp(root_ + "/" + out + "/metrics.csv");
    EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 1 + s["epochs_run"].get<int>());
    kept_rows = std::max(kept_rows, s["epochs_run"].get<int>());
  }
  EXPECT_GE(diverged, 2);
  EXPECT_GE(kept_rows, 1) << "some run diverged after finishing an epoch, and its rows stayed";
}

TEST_F(Cli, CorruptOrTruncatedCheckpoint) {
  ASSERT_EQ(train("ck").code, 0);
  const std::string path = root_ + "/ck/model.ckpt";
  const std::string good = slurp(path);
  std::ofstream(path, std::ios::binary) << good.substr(0, good.size() - 7);
  expect_one_line_error(tailor("eval " + root_ + "/ck"), path);
  std::string flipped = good;
  flipped[flipped.size() / 3] ^= 1;
  std::ofstream(path, std::ios::binary) << flipped;
  expect_one_line_error(tailor("eval " + root_ + "/ck"), "checksum");
  expect_one_line_error(tailor("eval " + root_ + "/no_run"), "no_run");
}

TEST_F(Cli, PredictShowsTopClasses) {
  ASSERT_EQ(train("pred").code, 0);
  // A clean class-1 image: the bar on row 3.
  Image img;
  img.width = img.height = 8;
  img.pixels.assign(64, 20);
  for (int c = 0; c < 8; ++c) img.pixels[3 * 8 + c] = 220;
  write_png(root_ + "/one.png", img);
  Ran r = tailor("predict " + root_ + "/pred " + root_ + "/one.png --top 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find(root_ + "/one.png: 1 "), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '%'), 3);
  expect_one_line_error(tailor("predict " + root_ + "/pred " + root_ + "/missing.png"), "missing.png");
}

TEST_F(Cli, SummaryCountsWeights) {
  Ran r = tailor("summary --model fcn --hidden 120,60 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["weights"], 784 * 120 + 120 + 240 + 120 * 60 + 60 + 120 + 60 * 10 + 10);
  // The input as numbers (channels, height, width): bench/torch_train.py reshapes by it.
  EXPECT_EQ(j["input"], nlohmann::json::parse("[1, 28, 28]"));
  Ran rgb = tailor("summary --model cnn --channels 4,8 --hidden 16 --image-size 24x32 --color rgb --json");
  ASSERT_EQ(rgb.code, 0) << rgb.err;
  EXPECT_EQ(nlohmann::json::parse(rgb.out)["input"], nlohmann::json::parse("[3, 24, 32]"));
  Ran t = tailor("summary --model cnn --weights 20k");
  ASSERT_EQ(t.code, 0);
  EXPECT_NE(t.out.find("total weights"), std::string::npos);
  EXPECT_NE(t.out.find("conv2d"), std::string::npos);
}

// Inputs that once slipped through (issue 15): each is one clear line now, or a documented,
// sane behaviour.

// CLI11's range check compares, and nan compares false: "--lr nan" trained until the loss
// diverged and "--dropout nan" trained to the end and exited 0. Every floating-point option of
// train (and so every sweep key) refuses nan and inf, naming the flag.
TEST_F(Cli, NonFiniteNumbersAreRefusedByEveryFloatOption) {
  for (const char* flag : {"--lr", "--momentum", "--weight-decay", "--gamma", "--label-smoothing", "--stop-at", "--dropout"})
    for (const char* v : {"nan", "inf", "-inf", "NaN", "1e999"}) {
      SCOPED_TRACE(std::string(flag) + "=" + v);
      expect_one_line_error(tailor(std::string("train ") + flag + "=" + v + " --data " + root_ + "/data --out " + root_ +
                                   "/r_nan"),
                            flag);
    }
  EXPECT_FALSE(fs::exists(root_ + "/r_nan/metrics.csv")) << "nothing was trained";
  const std::string sweep = root_ + "/nan.toml";
  std::ofstream(sweep) << "[base]\nmodel = \"fcn\"\n[grid]\nlr = [0.01, nan]\n";
  Ran r = tailor("sweep " + sweep + " --dry-run");
  expect_one_line_error(r, "nan.toml:4: key 'lr'");
  EXPECT_NE(r.err.find("finite"), std::string::npos) << r.err;
}

// "--threads 1024" on 2 cores made an FCN epoch take 42.7 s instead of under 1 s: more threads
// than cores are capped at the cores, with one warning, and the run records what it used.
TEST_F(Cli, ThreadsBeyondTheCoresAreCappedWithOneWarning) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const int cores = CPU_COUNT(&set);
  Ran r = tailor("train --model fcn --hidden 8 --epochs 1 --val 60 --progress none --threads 1024 --data " + root_ +
                 "/data --out " + root_ + "/r_threads");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find("warning: --threads 1024 is more than the " + std::to_string(cores) + " cores"), std::string::npos)
      << r.err;
  EXPECT_NE(slurp(root_ + "/r_threads/config.toml").find("threads = " + std::to_string(cores) + "\n"), std::string::npos);
}

// A sweep file whose grid multiplies out to 9,000,000 trials made `sweep --dry-run` take 6.2 GB
// and 32 s before printing anything; it is refused as soon as the axes are read.
TEST_F(Cli, SweepsOfMillionsOfTrialsAreRefusedBeforeExpanding) {
  std::string lr, batch, epochs;
  for (int i = 1; i <= 300; ++i) lr += (i > 1 ? ", " : "") + std::to_string(i) + "e-4";
  for (int i = 1; i <= 300; ++i) batch += (i > 1 ? ", " : "") + std::to_string(i);
  for (int i = 1; i <= 100; ++i) epochs += (i > 1 ? ", " : "") + std::to_string(i);
  const std::string sweep = root_ + "/huge.toml";
  std::ofstream(sweep) << "[grid]\nlr = [" << lr << "]\nbatch-size = [" << batch << "]\nepochs = [" << epochs << "]\n";
  Ran r = tailor("sweep " + sweep + " --dry-run");
  expect_one_line_error(r, "more than 100000 trials");
  EXPECT_NE(r.err.find("1 rows x 300 batch-size x 100 epochs x 300 lr x 1 seeds"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  // --seeds multiplies the trials too.
  std::ofstream(root_ + "/many_seeds.toml") << "[grid]\nlr = [" << lr << "]\n";
  expect_one_line_error(tailor("sweep " + root_ + "/many_seeds.toml --seeds 1000 --dry-run"), "--seeds 1000");
}

// A search's best.toml holds its whole Pareto set; `--row` runs the members asked for, and a name
// the file does not have is one line listing the names it has.
TEST_F(Cli, SweepRowsRunsOnlyTheRowsNamed) {
  const std::string sweep = root_ + "/rows.toml";
  std::ofstream(sweep) << "seeds = [1, 2]\n[base]\nmodel = \"fcn\"\n[[row]]\nname = \"small\"\nhidden = [8]\n"
                          "[[row]]\nname = \"small wide\"\nhidden = [64]\n[[row]]\nname = \"deep\"\nhidden = [8, 8]\n"
                          "[grid]\nlr = [0.001, 0.01]\n";
  Ran all = tailor("sweep " + sweep + " --dry-run");
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.out.find("12 trials"), std::string::npos) << all.out;
  Ran some = tailor("sweep " + sweep + " --row small --row deep --dry-run");
  ASSERT_EQ(some.code, 0) << some.err;
  EXPECT_NE(some.out.find("8 trials"), std::string::npos) << some.out;
  EXPECT_EQ(some.out.find("small wide"), std::string::npos) << "a row whose name only begins alike stays out";
  EXPECT_NE(some.out.find("deep lr=0.01"), std::string::npos) << some.out;
  // Each kept trial is the whole sweep's, line for line (same id, so a whole run continues from it).
  std::istringstream lines(some.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" seed ") != std::string::npos) {
      EXPECT_NE(all.out.find(line), std::string::npos) << line;
    }
  }
  Ran commas = tailor("sweep --row 'small wide,deep' " + sweep + " --seeds 1 --dry-run");
  ASSERT_EQ(commas.code, 0) << commas.err;
  EXPECT_NE(commas.out.find("4 trials"), std::string::npos) << commas.out;
  Ran bad = tailor("sweep " + sweep + " --row wide --dry-run");
  expect_one_line_error(bad, "--row 'wide'");
  EXPECT_NE(bad.err.find("'small', 'small wide', 'deep'"), std::string::npos) << bad.err;
}

// "--channels 100000,100000" ended in a bare "out of memory": a model that cannot fit is refused
// from its description, naming the flags that size it, before anything is allocated.
TEST_F(Cli, ModelsTooLargeForTheMachineNameTheFlags) {
  for (const char* flags : {"--model cnn --channels 100000,100000", "--model fcn --hidden 100000,100000,100000"}) {
    Ran r = tailor(std::string("train ") + flags + " --epochs 1 --val 60 --progress none --data " + root_ + "/data --out " +
                   root_ + "/r_huge");
    expect_one_line_error(r, "--channels/--hidden");
    EXPECT_NE(r.err.find("would need about"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("out of memory"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace tailor
