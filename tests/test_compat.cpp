// The runs of the previous version (tests/data/v0.1.0: tailor 0.1.0 before CNNs of stages and the
// portable build) under this one. Their checkpoint loads to the same arrays and evaluates to the
// test accuracy and loss that run reported; their resume.state continues the run, keeps its
// finished epoch's row as it was written, and two resumes of it give the same bytes. (Bit for bit
// against what the old build itself would have computed after the resume is not possible: this
// version builds without fused multiply-adds the compiler used to contract, -ffp-contract=off, so
// its updates round differently; the continued epochs' training losses still agree to the six
// decimals metrics.csv keeps.)
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "tiny_data.hpp"
#include "train/checkpoint.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::Ran;
using testing::run_tailor;
using testing::slurp;

const std::string kOld = std::string(TAILOR_TEST_DATA) + "/v0.1.0";

class Compat : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("tailor_compat_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    if (!testing::write_fashion_slice(root_ + "/data", 2000, 500)) GTEST_SKIP() << "no Fashion-MNIST";
  }
  void TearDown() override { fs::remove_all(root_); }
  // A copy of an old run whose config.toml names this test's data.
  std::string copy(const std::string& name) {
    const std::string to = root_ + "/" + name;
    fs::copy(kOld + "/" + name, to);
    std::string config = slurp(to + "/config.toml");
    const auto at = config.find("dir = '");
    config.replace(at, config.find('\n', at) - at, "dir = '" + root_ + "/data'");
    std::ofstream(to + "/config.toml") << config;
    return to;
  }
  std::string root_;
};

// Column `col` of every row of a metrics.csv (the header left out).
std::vector<std::string> column(const std::string& csv, int col) {
  std::vector<std::string> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream cells(line);
    std::string cell;
    for (int c = 0; c <= col; ++c) std::getline(cells, cell, ',');
    out.push_back(cell);
  }
  return out;
}

TEST_F(Compat, OldCheckpointLoadsAndEvaluatesAsItsRunReported) {
  const std::string run = copy("run");
  const Checkpoint ck = read_checkpoint(run + "/model.ckpt");
  LoadedModel m = load_model(run + "/model.ckpt");
  ASSERT_EQ(m.model->num_values(), ck.weights.size());
  EXPECT_EQ(0, std::memcmp(m.model->values(), ck.weights.data(), ck.weights.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(m.model->buffer_values(), ck.stats.data(), ck.stats.size() * sizeof(float)));
  EXPECT_FALSE(m.spec.staged());
  EXPECT_FALSE(m.tta_flip);
  const nlohmann::json summary = nlohmann::json::parse(slurp(run + "/summary.json"));
  const Ran r = run_tailor("eval " + run + " --data " + root_ + "/data --json", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json e = nlohmann::json::parse(r.out);
  EXPECT_EQ(e.at("test_acc").get<double>(), summary.at("test_acc").get<double>());
  EXPECT_NEAR(e.at("test_loss").get<double>(), summary.at("test_loss").get<double>(),
              1e-4 * summary.at("test_loss").get<double>());
}

TEST_F(Compat, OldResumeStateContinuesTheRun) {
  const std::string a = copy("interrupted");
  fs::rename(a, root_ + "/a");
  const std::string b = copy("interrupted");
  for (const std::string& dir : {root_ + "/a", b}) {
    const Ran r = run_tailor("train --resume " + dir + " --progress none", root_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir + "/resume.state"));
  }
  EXPECT_EQ(slurp(root_ + "/a/model.ckpt"), slurp(b + "/model.ckpt")) << "two resumes of one state differ";
  const std::string resumed = slurp(b + "/metrics.csv"), old = slurp(kOld + "/run/metrics.csv");
  const std::string first = slurp(kOld + "/interrupted/metrics.csv");
  EXPECT_EQ(resumed.substr(0, first.size()), first) << "the finished epoch's row is kept as written";
  // The old run, uninterrupted, to its end: the same epochs, the same training losses to six
  // decimals, the same final test accuracy.
  EXPECT_EQ(column(resumed, 0), column(old, 0));
  EXPECT_EQ(column(resumed, 1), column(old, 1));
  EXPECT_EQ(column(resumed, 5).back(), column(old, 5).back());
}

}  // namespace
}  // namespace tailor
