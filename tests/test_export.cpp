// `tailor export`: every layer combination exported and checked by two programs that are not
// tailor (tests/onnx/check_onnx.py: onnx.checker with full_check, and OpenCV's dnn running the
// model against `tailor eval --predictions --logits`), every opset offered, and bad input.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "data/image.hpp"
#include "tiny_data.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::Ran;
using testing::run_tailor;
using testing::slurp;

class Export : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_export_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 400, 120, 12, 3);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static Ran tailor(const std::string& args) { return run_tailor(args, root_); }
  static std::string dir(const std::string& name) { return root_ + "/" + name; }
  // A small model of `family` trained for two epochs on the tiny set.
  static void train(const std::string& name, const std::string& family, const std::string& extra,
                    const std::string& data = "data") {
    const std::string widths = extra.find("--arch") != std::string::npos ? ""
                               : family == "fcn"                          ? "--hidden 16,8"
                                                                          : "--channels 4,8 --hidden 12";
    Ran r = tailor("train --model " + family + " " + widths + " --epochs 2 --batch-size 32 --val 40 --threads 1 " +
                   "--progress none --data " + dir(data) + " --out " + dir(name) + " " + extra);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // Exports the run, has tailor evaluate it, and has check_onnx.py compare; returns its line.
  // opset 0: the default.
  static std::string export_and_check(const std::string& name, int opset = 0, const std::string& data = "data") {
    const std::string run = dir(name), suffix = opset ? "-opset" + std::to_string(opset) : "";
    const std::string onnx = run + "/model" + suffix + ".onnx";
    Ran e = tailor("export " + run + " --out " + onnx + (opset ? " --opset " + std::to_string(opset) : ""));
    EXPECT_EQ(e.code, 0) << e.err;
    EXPECT_NE(e.out.find(onnx), std::string::npos) << e.out;
    Ran v = tailor("eval " + run + " --predictions " + run + "/pred.csv --logits " + run + "/logits.csv");
    EXPECT_EQ(v.code, 0) << v.err;
    Ran c = testing::run_command("/usr/bin/python3 " TAILOR_ONNX_CHECKER " " + onnx + " " + dir(data) + " " + run +
                                     "/pred.csv " + run + "/logits.csv",
                                 root_);
    EXPECT_EQ(c.code, 0) << c.out << c.err;
    return c.out;
  }
  static std::string root_;
};
std::string Export::root_;

// FCN and CNN, batch norm on and off, each activation: OpenCV's predictions equal tailor's for
// every test image and the logits agree within 1e-4 of the largest; onnx.checker passes.
TEST_F(Export, EveryLayerCombinationRunsInOpenCvAsInTailor) {
  for (const char* family : {"fcn", "cnn"})
    for (const char* bn : {"--batchnorm", "--no-batchnorm"})
      for (const char* act : {"relu", "sigmoid", "tanh"}) {
        const std::string name = std::string(family) + bn + "-" + act;
        SCOPED_TRACE(name);
        train(name, family, std::string(bn) + " --activation " + act + " --dropout 0.3");
        const std::string line = export_and_check(name);
        EXPECT_NE(line.find("disagree on 0 predictions"), std::string::npos) << line;
        RecordProperty(name, line);
      }
}

// Every pool of a CNN block, with batch norm (the fused tail) and without: L2 pooling goes out as
// Mul, AveragePool, Mul and Sqrt, which OpenCV 4.6 runs (it has no LpPool); avg as AveragePool.
TEST_F(Export, EveryPoolRunsInOpenCvAsInTailor) {
  for (const char* pool : {"max", "avg", "l2"})
    for (const char* bn : {"--batchnorm", "--no-batchnorm"}) {
      const std::string name = std::string("cnn-") + pool + bn;
      SCOPED_TRACE(name);
      train(name, "cnn", std::string(bn) + " --pool " + pool);
      const std::string line = export_and_check(name);
      EXPECT_NE(line.find("disagree on 0 predictions"), std::string::npos) << line;
      RecordProperty(name, line);
    }
}

// The blocks of CNNs built from stages (--arch): residual blocks with identity and projected
// (strided) skips, relu and tanh after the sum; 5x5, depthwise-separable and strided convolutions
// (Conv with group and strides); global average pooling (GlobalAveragePool + Flatten) and the
// flatten head; and test-time flips (the network twice, the second on a mirrored input).
TEST_F(Export, EveryStageBlockRunsInOpenCvAsInTailor) {
  const std::pair<const char*, const char*> cases[] = {
      {"residual-gap", "--arch '4,max | 6x2,res,s2 | 6x2,res | gap'"},
      {"separable-k5-flat", "--arch '4,k5 | 6,sep,s2 | 8x2,sep,res,avg | flat | fc 5'"},
      {"residual-tanh", "--arch '4 | 6x2,res,max | gap' --activation tanh"},
      {"residual-tta", "--arch '4,max | 6x2,res,s2 | gap' --tta flip"},
      {"fcn-tta", "--tta flip"}};
  for (const auto& [name, args] : cases) {
    SCOPED_TRACE(name);
    train(name, std::string(name).rfind("fcn", 0) == 0 ? "fcn" : "cnn", args);
    const std::string line = export_and_check(name);
    EXPECT_NE(line.find("disagree on 0 predictions"), std::string::npos) << line;
    RecordProperty(name, line);
  }
}

// A colour model (an RGB image folder, --color rgb): the graph takes (N, 3, H, W) and normalises
// each channel with its own mean and std; the checker reads the folder's test pictures with
// OpenCV's own PNG decoder, in tailor's order.
TEST_F(Export, ColourModelsRunInOpenCvAsInTailor) {
  Rng rng(2);
  const int tint[3][3] = {{220, 90, 30}, {40, 190, 60}, {70, 80, 230}};
  for (const char* split : {"train", "test"})
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < (split[1] == 'r' ? 60 : 20); ++i) {
        Image img;
        img.width = img.height = 10, img.channels = 3;
        img.pixels.resize(300);
        for (int c = 0; c < 3; ++c)
          for (int j = 0; j < 100; ++j)
            img.pixels[c * 100 + j] = static_cast<uint8_t>(rng.below(100) < 50 ? tint[k][c] - rng.below(30) : rng.below(120));
        const std::string cls = dir("rgb") + "/" + split + "/k" + std::to_string(k);
        fs::create_directories(cls);
        write_png(cls + "/" + std::to_string(i) + ".png", img);
      }
  for (const char* family : {"fcn", "cnn"}) {
    const std::string name = std::string("rgb-") + family;
    SCOPED_TRACE(name);
    train(name, family, "--color rgb", "rgb");
    const std::string line = export_and_check(name, 0, "rgb");
    EXPECT_NE(line.find("disagree on 0 predictions"), std::string::npos) << line;
    EXPECT_NE(line.find("60 images"), std::string::npos) << line;
    RecordProperty(name, line);
  }
}

TEST_F(Export, EveryOpsetOfferedPassesTheChecks) {
  train("opsets", "cnn", "");
  for (int opset = 13; opset <= 17; ++opset) {
    SCOPED_TRACE(opset);
    const std::string line = export_and_check("opsets", opset);
    EXPECT_NE(line.find("opset " + std::to_string(opset) + ","), std::string::npos) << line;
  }
}

TEST_F(Export, DefaultOutputIsModelOnnxInTheRun) {
  train("default", "fcn", "");
  Ran e = tailor("export " + dir("default"));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(fs::exists(dir("default") + "/model.onnx"));
  EXPECT_NE(e.out.find("opset 13"), std::string::npos) << e.out;
  Ran help = tailor("export --help");
  EXPECT_EQ(help.code, 0);
  for (const char* opt : {"--out", "--opset", "RUN/model.onnx", "13 to 17"})
    EXPECT_NE(help.out.find(opt), std::string::npos) << opt;
}

TEST_F(Export, BadInputIsOneClearLineAndLeavesNoPartialFile) {
  train("bad", "fcn", "");
  const std::string run = dir("bad");
  // An unsupported opset, either side of the range.
  expect_one_line_error(tailor("export " + run + " --opset 12"), "--opset 12");
  expect_one_line_error(tailor("export " + run + " --opset 18"), "--opset 18");
  // A run directory without a checkpoint.
  fs::create_directories(dir("empty"));
  expect_one_line_error(tailor("export " + dir("empty")), dir("empty") + "/model.ckpt");
  // A damaged checkpoint: one byte flipped, then cut short.
  fs::create_directories(dir("damaged"));
  std::string bytes = slurp(run + "/model.ckpt");
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(dir("damaged") + "/model.ckpt", std::ios::binary) << bytes;
  expect_one_line_error(tailor("export " + dir("damaged")), "model.ckpt");
  std::ofstream(dir("damaged") + "/model.ckpt", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  expect_one_line_error(tailor("export " + dir("damaged")), "model.ckpt");
  EXPECT_FALSE(fs::exists(dir("damaged") + "/model.onnx"));
  // An output path that cannot be written; nothing is left behind.
  expect_one_line_error(tailor("export " + run + " --out " + dir("no/such/dir") + "/m.onnx"), dir("no/such/dir"));
  EXPECT_FALSE(fs::exists(dir("no")));
  // A failed export leaves an earlier file as it was.
  ASSERT_EQ(tailor("export " + run).code, 0);
  const std::string before = slurp(run + "/model.onnx");
  expect_one_line_error(tailor("export " + run + " --opset 99"), "--opset 99");
  EXPECT_EQ(slurp(run + "/model.onnx"), before);
  EXPECT_FALSE(fs::exists(run + "/model.onnx.tmp"));
}

}  // namespace
}  // namespace tailor
