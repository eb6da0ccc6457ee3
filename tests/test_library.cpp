// The library's face (include/tailor/tailor.hpp): pictures in memory train as the same pictures
// on disk, trainings in two threads give each the bits it gives alone, callbacks stop a run,
// options are train's own, and a finished run predicts and evaluates as the program does.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tailor/tailor.hpp"
#include "tiny_data.hpp"

namespace fs = std::filesystem;

namespace {

// `o` with one option's value replaced.
tailor::Options with(tailor::Options o, const std::string& name, const std::string& value) {
  for (auto& [k, v] : o)
    if (k == name) v = value;
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// metrics.csv without its time columns (epoch_seconds, elapsed_seconds, images_per_second).
std::string metrics_without_times(const fs::path& p) {
  std::stringstream in(slurp(p)), out;
  for (std::string line; std::getline(in, line);) {
    size_t cut = line.size();
    for (int k = 0; k < 3; ++k) cut = line.rfind(',', cut - 1);
    out << line.substr(0, cut) << "\n";
  }
  return out.str();
}

class Library : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("tailor_library_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    tailor::testing::write_tiny_dataset((dir_ / "data").string(), 600, 90, 12, 4, 7);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string out(const std::string& name) { return (dir_ / name).string(); }
  static tailor::Options cnn(const std::string& name, const std::string& seed = "3") {
    return {{"model", "cnn"}, {"channels", "4,8"}, {"hidden", "12"}, {"epochs", "3"}, {"val", "60"},
            {"threads", "2"}, {"seed", seed}, {"flip", "true"}, {"out", out(name)}};
  }
  static tailor::Options fcn(const std::string& name) {
    return {{"model", "fcn"}, {"hidden", "24"}, {"epochs", "3"}, {"val", "60"}, {"threads", "2"},
            {"seed", "5"}, {"dropout", "0.1"}, {"out", out(name)}};
  }
  static inline fs::path dir_;
};

TEST_F(Library, PicturesInMemoryTrainAsTheSamePicturesOnDisk) {
  const tailor::Data disk = tailor::Data::from_dir(out("data"));
  tailor::Data memory = tailor::read_data(out("data"));
  ASSERT_EQ(memory.train.count, 600);
  ASSERT_EQ(memory.test.count, 90);
  memory.source = "";  // as from nowhere on disk: only the checkpoint's data_dir may differ
  tailor::train(disk, cnn("disk"));
  tailor::train(memory, cnn("memory"));
  EXPECT_EQ(metrics_without_times(dir_ / "disk/metrics.csv"), metrics_without_times(dir_ / "memory/metrics.csv"));
  // With the directory named as their source, the checkpoints are the same bytes.
  memory.source = out("data");
  tailor::train(memory, cnn("memory_src"));
  EXPECT_EQ(slurp(dir_ / "disk/model.ckpt"), slurp(dir_ / "memory_src/model.ckpt"));
}

TEST_F(Library, TwoThreadsGiveEachTheBitsOfTheRunAlone) {
  const tailor::Data data = tailor::read_data(out("data"));
  tailor::train(data, cnn("alone_cnn"));
  tailor::train(data, fcn("alone_fcn"));
  std::exception_ptr errors[2];
  std::thread a([&] {
    try {
      tailor::train(data, cnn("both_cnn"));
    } catch (...) {
      errors[0] = std::current_exception();
    }
  });
  std::thread b([&] {
    try {
      tailor::train(data, fcn("both_fcn"));
    } catch (...) {
      errors[1] = std::current_exception();
    }
  });
  a.join();
  b.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  EXPECT_EQ(slurp(dir_ / "alone_cnn/model.ckpt"), slurp(dir_ / "both_cnn/model.ckpt"));
  EXPECT_EQ(slurp(dir_ / "alone_fcn/model.ckpt"), slurp(dir_ / "both_fcn/model.ckpt"));
  EXPECT_EQ(metrics_without_times(dir_ / "alone_cnn/metrics.csv"), metrics_without_times(dir_ / "both_cnn/metrics.csv"));
}

TEST_F(Library, ASecondThreadWritingTheSameDirectoryIsRefused) {
  const tailor::Data data = tailor::read_data(out("data"));
  std::string second;  // what the second writer was told, while the first held the directory
  tailor::Hooks hooks;
  hooks.on_epoch = [&](const tailor::Epoch& e) {
    if (e.epoch == 1) {
      std::thread b([&] {
        try {
          tailor::train(data, fcn("shared"));
          second = "trained";
        } catch (const tailor::Error& err) {
          second = err.what();
        }
      });
      b.join();
    }
    return true;
  };
  tailor::train(data, fcn("shared"), hooks);
  EXPECT_NE(second.find("is in use by"), std::string::npos) << second;
  EXPECT_EQ(tailor::Run::load(out("shared")).metrics().size(), 3u);
}

TEST_F(Library, TheEpochCallbackSeesEveryEpochAndStopsTheRun) {
  const tailor::Data data = tailor::read_data(out("data"));
  std::vector<tailor::Epoch> seen;
  tailor::Hooks hooks;
  hooks.on_epoch = [&](const tailor::Epoch& e) {
    seen.push_back(e);
    return e.epoch < 2;
  };
  const tailor::Run run = tailor::train(data, with(fcn("callback"), "epochs", "6"), hooks);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].epochs, 6);
  const std::vector<tailor::Epoch> rows = run.metrics();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[1].train_loss, std::round(seen[1].train_loss * 1e6) / 1e6);
  EXPECT_NE(run.summary_json().find("\"stop_reason\": \"callback\""), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "callback/model.ckpt"));
}

TEST_F(Library, AStopRequestLeavesTheRunResumableBitForBit) {
  const tailor::Data data = tailor::read_data(out("data"));
  tailor::train(data, cnn("whole"));
  std::atomic<int> stop{0};
  tailor::Hooks hooks;
  hooks.stop = &stop;
  hooks.on_epoch = [&](const tailor::Epoch& e) {
    if (e.epoch == 1) stop = 15;  // a SIGTERM's number, say: seen at the next step
    return true;
  };
  try {
    tailor::train(data, cnn("stopped"), hooks);
    FAIL() << "the run did not stop";
  } catch (const tailor::Interrupted& e) {
    EXPECT_EQ(e.epochs_done, 1);
    EXPECT_EQ(e.value, 15);
  }
  EXPECT_FALSE(fs::exists(dir_ / "stopped/model.ckpt"));
  const tailor::Run run = tailor::resume(out("stopped"), data);
  EXPECT_EQ(slurp(dir_ / "whole/model.ckpt"), slurp(dir_ / "stopped/model.ckpt"));
  EXPECT_EQ(run.metrics().size(), 3u);
}

TEST_F(Library, OptionsAreTrainsOwnAndBadOnesNameThemselves) {
  const tailor::Data data = tailor::read_data(out("data"));
  try {
    tailor::train(data, {{"learning-rate", "0.1"}});
    FAIL();
  } catch (const tailor::OptionError& e) {
    EXPECT_TRUE(e.unknown);
    EXPECT_EQ(e.option, "learning-rate");
  }
  try {
    tailor::train(data, {{"lr", "nan"}, {"out", out("bad")}});
    FAIL();
  } catch (const tailor::OptionError& e) {
    EXPECT_FALSE(e.unknown);
    EXPECT_EQ(e.option, "lr");
  }
  EXPECT_THROW(tailor::train(data, {{"flip", "maybe"}}), tailor::OptionError);
  EXPECT_THROW(tailor::train(data, {{"epochs", "2"}, {"epochs", "3"}}), tailor::OptionError);  // given twice
  EXPECT_THROW(tailor::train(data, {{"data", "/tmp"}}), tailor::OptionError);  // pictures in memory
  bool listed = false;
  for (const tailor::TrainOption& o : tailor::train_options()) listed = listed || (o.name == "batch-size" && o.default_value == "64");
  EXPECT_TRUE(listed);
}

TEST_F(Library, BadPicturesInMemoryAreOneLine) {
  tailor::Data data = tailor::read_data(out("data"));
  data.train.labels[5] = 9;  // four classes named by the directory
  EXPECT_THROW(tailor::train(data, fcn("labels")), tailor::Error);
  data = tailor::read_data(out("data"));
  data.train.pixels.pop_back();
  EXPECT_THROW(tailor::train(data, fcn("pixels")), tailor::Error);
  data = tailor::read_data(out("data"));
  data.test.cols = 6;
  EXPECT_THROW(tailor::train(data, fcn("shape")), tailor::Error);
}

TEST_F(Library, ARunPredictsAndEvaluatesAsItsRunDid) {
  const tailor::Data data = tailor::read_data(out("data"));
  tailor::train(data, cnn("use"));
  const tailor::Run run = tailor::Run::load(out("use"));
  EXPECT_EQ(run.classes().size(), 4u);
  const tailor::Evaluation e = run.evaluate(data.test);
  EXPECT_EQ(e.count, 90);
  const std::string summary = run.summary_json();
  std::ostringstream acc;
  acc << "\"test_acc\": ";
  const size_t at = summary.find(acc.str());
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(summary.substr(at + acc.str().size())), e.accuracy, 1e-9);
  const std::vector<int> labels = run.predict(data.test);
  const std::vector<float> p = run.predict_proba(data.test.pixels.data(), data.test.count);
  ASSERT_EQ(p.size(), labels.size() * 4);
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    right += labels[i] == data.test.labels[i];
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      sum += p[i * 4 + k];
      EXPECT_LE(p[i * 4 + k], p[i * 4 + labels[i]]);
    }
    EXPECT_NEAR(sum, 1.0f, 1e-5);
  }
  EXPECT_NEAR(100.0 * right / 90.0, e.accuracy, 1e-9);
  run.export_onnx(out("use.onnx"));
  EXPECT_GT(fs::file_size(dir_ / "use.onnx"), 1000u);
  EXPECT_THROW(run.export_onnx(out("bad.onnx"), 99), tailor::Error);
}

}  // namespace
