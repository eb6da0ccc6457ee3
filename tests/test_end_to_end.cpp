// End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist, installed by
// scripts/setup.sh): short trainings reach sane accuracy, and eval reproduces them exactly.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "data/dataset.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;

class RealData : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kDefaultDataDir)) << "install dataset-fashion-mnist (make test does)";
    dir_ = (fs::temp_directory_path() / ("tailor_e2e_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json train_and_check(const std::string& flags, const std::string& name) {
    auto r = testing::run_tailor("train --threads 1 --progress none --out " + dir_ + "/" + name + " " + flags, dir_);
    EXPECT_EQ(r.code, 0) << r.err;
    auto s = nlohmann::json::parse(testing::slurp(dir_ + "/" + name + "/summary.json"));
    auto e = testing::run_tailor("eval --json " + dir_ + "/" + name, dir_);
    EXPECT_EQ(e.code, 0) << e.err;
    EXPECT_EQ(nlohmann::json::parse(e.out)["test_acc"].get<double>(), s["test_acc"].get<double>());
    return s;
  }
  std::string dir_;
};

TEST_F(RealData, FcnLearnsFashionMnistInTwoEpochs) {
  auto s = train_and_check("--model fcn --weights 100k --epochs 2 --schedule constant", "fcn");
  EXPECT_GE(s["test_acc"].get<double>(), 84.0);
  EXPECT_NEAR(s["weights"].get<double>(), 100000, 5000);
}

TEST_F(RealData, CnnLearnsFashionMnistInOneEpoch) {
  auto s = train_and_check("--model cnn --weights 20k --epochs 1 --schedule constant", "cnn");
  EXPECT_GE(s["test_acc"].get<double>(), 85.0);
}

}  // namespace
}  // namespace tailor
