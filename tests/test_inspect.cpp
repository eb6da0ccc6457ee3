// `tailor inspect` as a user meets it, on a tiny generated data set: every file is written, the
// confusion matrix agrees with `tailor eval`, the per-class table with the matrix, the page links
// every figure, and bad input is one clear line. Then the render helpers on their own.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "inspect/render.hpp"
#include "tiny_data.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_line_error;
using testing::Ran;
using testing::run_tailor;
using testing::slurp;

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream l(line);
    while (std::getline(l, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// A PNG file: the signature, then IHDR with the width and height (big-endian).
struct PngInfo {
  bool valid = false;
  uint32_t width = 0, height = 0;
  size_t bytes = 0;
};
PngInfo png_info(const std::string& path) {
  const std::string b = slurp(path);
  PngInfo p;
  p.bytes = b.size();
  if (b.size() < 24 || b.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || b.compare(12, 4, "IHDR") != 0) return p;
  auto be32 = [&](size_t o) {
    return (uint32_t{static_cast<uint8_t>(b[o])} << 24) | (uint32_t{static_cast<uint8_t>(b[o + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(b[o + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[o + 3])};
  };
  p.valid = true;
  p.width = be32(16);
  p.height = be32(20);
  return p;
}

class Inspect : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_inspect_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 600, 150, 12, 3);
    // The tiny set is too easy to get wrong: every 7th test label is moved to the next class, so
    // a model that learned the bars makes confident mistakes there. Labels stay i % 3 elsewhere.
    std::vector<uint8_t> labels(150);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>((i % 3 + (i % 7 == 0 ? 1 : 0)) % 3);
    const uint32_t dims[1] = {150};
    testing::write_gz(root_ + "/data/t10k-labels-idx1-ubyte.gz", testing::idx_bytes(1, dims, labels.data(), labels.size()));
    const Ran r = tailor("train --model cnn --channels 4,8 --hidden 12 --epochs 3 --lr 0.003 --batch-size 32 --val 60 "
                         "--threads 1 --progress none --data " + root_ + "/data --out " + root_ + "/cnn");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static Ran tailor(const std::string& args) { return run_tailor(args, root_); }

  static std::string root_;
};
std::string Inspect::root_;

TEST_F(Inspect, WritesEveryFileAndAgreesWithEval) {
  const std::string out = root_ + "/cnn/inspect";
  const Ran r = tailor("inspect " + root_ + "/cnn --images 0,5,149 --mistakes 7");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"confusion.csv", "confusion_normalised.csv", "confusion.png", "per_class.csv", "mistakes.csv",
                        "mistakes.png", "index.html", "saliency/0.png", "saliency/5.png", "saliency/149.png"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  for (const auto& e : fs::recursive_directory_iterator(out))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path() << " left behind";

  // Counts: one row per true class, summing to the test set; the diagonal is eval's accuracy.
  const auto cm = read_csv(out + "/confusion.csv");
  ASSERT_EQ(cm.size(), 4u);
  EXPECT_EQ(cm[0], (std::vector<std::string>{"true\\pred", "0", "1", "2"}));
  int64_t total = 0, diag = 0;
  int64_t counts[3][3];
  for (int t = 0; t < 3; ++t) {
    ASSERT_EQ(cm[t + 1].size(), 4u);
    EXPECT_EQ(cm[t + 1][0], std::to_string(t));
    for (int p = 0; p < 3; ++p) {
      counts[t][p] = std::stoll(cm[t + 1][p + 1]);
      total += counts[t][p];
      if (t == p) diag += counts[t][p];
    }
  }
  EXPECT_EQ(total, 150);
  const Ran e = tailor("eval --json " + root_ + "/cnn");
  ASSERT_EQ(e.code, 0) << e.err;
  const double eval_acc = nlohmann::json::parse(e.out)["test_acc"].get<double>();
  EXPECT_DOUBLE_EQ(100.0 * static_cast<double>(diag) / 150.0, eval_acc);
  EXPECT_NE(r.out.find(fmt::format("test accuracy {:.2f}%", eval_acc)), std::string::npos) << r.out;

  // Row-normalised: each row of an occupied class sums to 100.
  const auto norm = read_csv(out + "/confusion_normalised.csv");
  ASSERT_EQ(norm.size(), 4u);
  for (int t = 0; t < 3; ++t) {
    double sum = 0;
    for (int p = 0; p < 3; ++p) {
      const double v = std::stod(norm[t + 1][p + 1]);
      sum += v;
      EXPECT_NEAR(v, 100.0 * static_cast<double>(counts[t][p]) / static_cast<double>(counts[t][0] + counts[t][1] + counts[t][2]),
                  0.006);
    }
    EXPECT_NEAR(sum, 100.0, 0.02);
  }

  // Per class: support = row, predicted = column, correct = diagonal; the percentages follow.
  const auto pc = read_csv(out + "/per_class.csv");
  ASSERT_EQ(pc.size(), 4u);
  EXPECT_EQ(pc[0], (std::vector<std::string>{"class", "support", "predicted", "correct", "precision", "recall", "f1"}));
  for (int k = 0; k < 3; ++k) {
    const auto& row = pc[k + 1];
    ASSERT_EQ(row.size(), 7u);
    const int64_t support = counts[k][0] + counts[k][1] + counts[k][2];
    const int64_t predicted = counts[0][k] + counts[1][k] + counts[2][k];
    EXPECT_EQ(row[0], std::to_string(k));
    EXPECT_EQ(std::stoll(row[1]), support);
    EXPECT_EQ(std::stoll(row[2]), predicted);
    EXPECT_EQ(std::stoll(row[3]), counts[k][k]);
    const double precision = predicted ? 100.0 * counts[k][k] / predicted : 0, recall = 100.0 * counts[k][k] / support;
    EXPECT_NEAR(std::stod(row[4]), precision, 0.006);
    EXPECT_NEAR(std::stod(row[5]), recall, 0.006);
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
    EXPECT_NEAR(std::stod(row[6]), f1, 0.006);
  }

  // Mistakes: at most 7, each one wrong, most confident first.
  const auto mis = read_csv(out + "/mistakes.csv");
  ASSERT_GE(mis.size(), 1u);
  EXPECT_EQ(mis[0], (std::vector<std::string>{"index", "true", "predicted", "probability"}));
  EXPECT_EQ(static_cast<int64_t>(mis.size()) - 1, std::min<int64_t>(7, 150 - diag));
  ASSERT_LT(diag, 150) << "the moved labels should give mistakes for this test to mean something";
  for (size_t i = 1; i < mis.size(); ++i) {
    EXPECT_NE(mis[i][1], mis[i][2]) << "row " << i;
    const double prob = std::stod(mis[i][3]);
    EXPECT_GT(prob, 0.0);
    EXPECT_LE(prob, 1.0);
    if (i > 1) {
      EXPECT_LE(prob, std::stod(mis[i - 1][3]));
    }
  }

  // Every PNG is a real, non-trivial image, and the page shows every one of them.
  const std::string html = slurp(out + "/index.html");
  int pngs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    if (entry.path().extension() != ".png") continue;
    ++pngs;
    const PngInfo info = png_info(entry.path().string());
    EXPECT_TRUE(info.valid) << entry.path();
    EXPECT_GT(info.bytes, 3000u) << entry.path();
    EXPECT_GE(info.width, 400u) << entry.path();
    EXPECT_GE(info.height, 150u) << entry.path();
    const std::string rel = fs::relative(entry.path(), out).string();
    EXPECT_NE(html.find("<img src=\"" + rel + "\""), std::string::npos) << rel << " is not shown on the page";
  }
  EXPECT_EQ(pngs, 5);
  for (const char* f : {"confusion.csv", "confusion_normalised.csv", "per_class.csv", "mistakes.csv"})
    EXPECT_NE(html.find("href=\"" + std::string(f) + "\""), std::string::npos) << f;
  EXPECT_EQ(html.find("http://"), std::string::npos) << "the page fetches nothing";
  EXPECT_EQ(html.find("https://"), std::string::npos) << "the page fetches nothing";
}

TEST_F(Inspect, SampledImagesAreStratifiedAndSeeded) {
  auto sampled = [&](const std::string& out, const std::string& extra) {
    const Ran r = tailor("inspect " + root_ + "/cnn --out " + out + " --mistakes 2 --samples 6 " + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(out + "/saliency")) files.insert(e.path().filename().string());
    return files;
  };
  const auto a = sampled(root_ + "/s_a", "--seed 3"), b = sampled(root_ + "/s_b", "--seed 3"),
             c = sampled(root_ + "/s_c", "--seed 4");
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(a, b) << "same seed, same images";
  EXPECT_NE(a, c) << "another seed, other images";
  // Six samples are two of each class (the test labels as SetUpTestSuite wrote them).
  int per_class[3] = {0, 0, 0};
  for (const std::string& f : a) {
    const int i = std::stoi(f);
    ++per_class[(i % 3 + (i % 7 == 0 ? 1 : 0)) % 3];
  }
  EXPECT_EQ(per_class[0], 2);
  EXPECT_EQ(per_class[1], 2);
  EXPECT_EQ(per_class[2], 2);
}

TEST_F(Inspect, WorksForAnFcnRun) {
  ASSERT_EQ(tailor("train --model fcn --hidden 16 --epochs 1 --val 60 --threads 1 --progress none --data " + root_ +
                   "/data --out " + root_ + "/fcn")
                .code,
            0);
  const Ran r = tailor("inspect " + root_ + "/fcn --images 7 --occlusion-patch 3 --occlusion-stride 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(png_info(root_ + "/fcn/inspect/saliency/7.png").valid);
  EXPECT_TRUE(fs::exists(root_ + "/fcn/inspect/index.html"));
}

// A CNN of stages (residual blocks, global average pooling) evaluated with test-time flips: the
// saliency goes back through the sum and the pooling, the confusion matrix is eval's with the
// run's flips (and without, with --tta none).
TEST_F(Inspect, WorksForAStagedRunWithFlips) {
  ASSERT_EQ(tailor("train --arch '4,max | 6x2,res,s2 | gap' --tta flip --epochs 2 --val 60 --threads 1 --progress none "
                   "--data " + root_ + "/data --out " + root_ + "/staged")
                .code,
            0);
  for (const char* tta : {"run", "none"}) {
    SCOPED_TRACE(tta);
    const Ran r = tailor("inspect " + root_ + "/staged --images 4 --tta " + tta);
    ASSERT_EQ(r.code, 0) << r.err;
    const Ran e = tailor("eval " + root_ + "/staged --tta " + tta);
    ASSERT_EQ(e.code, 0) << e.err;
    const auto cm = read_csv(root_ + "/staged/inspect/confusion.csv");
    int64_t diag = 0;
    for (size_t i = 1; i < cm.size(); ++i) diag += std::stoll(cm[i][i]);
    EXPECT_NE(e.out.find("(" + std::to_string(diag) + "/150)"), std::string::npos) << e.out;
    const PngInfo png = png_info(root_ + "/staged/inspect/saliency/4.png");
    EXPECT_TRUE(png.valid);
  }
}

TEST_F(Inspect, HelpNamesEveryOption) {
  const Ran r = tailor("inspect --help");
  EXPECT_EQ(r.code, 0);
  for (const char* opt : {"--data", "--out", "--images", "--samples", "--seed", "--mistakes", "--occlusion-patch",
                          "--occlusion-stride", "--threads"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

TEST_F(Inspect, IndexOutsideTheTestSetIsOneLineAndWritesNothing) {
  const std::string out = root_ + "/bad_index";
  const Ran r = tailor("inspect " + root_ + "/cnn --out " + out + " --images 3,150");
  expect_one_line_error(r, "--images 150");
  EXPECT_NE(r.err.find("150 images"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out)) << "nothing is written before the values are checked";
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --out " + out + " --images 3,x"), "'x'");
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --out " + out + " --images -1"), "-1");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Inspect, BadRunOutputAndPatchAreOneLine) {
  expect_one_line_error(tailor("inspect " + root_ + "/no_such_run"), "no_such_run");
  std::ofstream(root_ + "/a_file") << "x";
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --images 1 --out " + root_ + "/a_file/sub"), "a_file/sub");
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --occlusion-patch 13"), "--occlusion-patch 13");
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --data " + root_ + "/no_data"), "no_data");
  expect_one_line_error(tailor("inspect " + root_ + "/cnn --mistakes -2"), "--mistakes");
}

// ---- The render helpers ----

TEST(Render, CsvFieldsAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("T-shirt/top"), "T-shirt/top");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

TEST(Render, ConfusionAndPerClassTables) {
  const std::vector<std::string> classes{"cat", "dog, big"};
  const std::vector<int64_t> counts{3, 1, 0, 0};  // 4 cats (3 right), no dogs
  EXPECT_EQ(confusion_csv(counts, classes), "true\\pred,cat,\"dog, big\"\ncat,3,1\n\"dog, big\",0,0\n");
  EXPECT_EQ(confusion_normalised_csv(counts, classes), "true\\pred,cat,\"dog, big\"\ncat,75.00,25.00\n\"dog, big\",0.00,0.00\n");
  const std::vector<ClassStats> stats = class_stats(counts, 2);
  EXPECT_EQ(per_class_csv(stats, classes),
            "class,support,predicted,correct,precision,recall,f1\ncat,4,3,3,100.00,75.00,85.71\n\"dog, big\",0,1,0,0.00,0.00,0.00\n");
  EXPECT_THROW(confusion_csv({1, 2, 3}, classes), Error);
}

TEST(Render, MostConfusedPair) {
  // Row 2 (class 2) predicted as 0 five times beats row 0 predicted as 1 four times.
  const std::vector<int64_t> counts{10, 4, 0, 0, 9, 1, 5, 0, 5};
  const ConfusedPair w = most_confused(counts, 3);
  EXPECT_EQ(w.truth, 2);
  EXPECT_EQ(w.pred, 0);
  EXPECT_EQ(w.count, 5);
  EXPECT_DOUBLE_EQ(w.row_percent, 50.0);
  EXPECT_EQ(most_confused({7, 0, 0, 7}, 2).count, 0) << "no mistakes, no pair";
}

TEST(Render, PageEscapesTextAndLinksItsFiles) {
  InspectPage pg;
  pg.run = "runs/<b>";
  pg.model = "cnn, conv 4 | fc 8";
  pg.classes = {"a&b", "<script>"};
  pg.counts = {2, 1, 0, 3};
  pg.stats = class_stats(pg.counts, 2);
  pg.mistakes = {{4, 0, 1, 0.9, ""}};
  pg.saliency = {{4, 0, 1, 0.9, "saliency/4.png"}};
  pg.files = {"confusion.csv", "saliency/4.png"};
  const std::string h = inspect_html(pg);
  EXPECT_EQ(h.find("<script>"), std::string::npos) << "class names are escaped";
  EXPECT_NE(h.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(h.find("a&amp;b"), std::string::npos);
  EXPECT_NE(h.find("runs/&lt;b&gt;"), std::string::npos);
  EXPECT_NE(h.find("<img src=\"saliency/4.png\""), std::string::npos);
  EXPECT_NE(h.find("href=\"confusion.csv\""), std::string::npos);
  EXPECT_NE(h.find("83.33%"), std::string::npos) << "accuracy 5 of 6";
  EXPECT_EQ(h.find("confusion.png"), std::string::npos) << "a figure that was not written is not shown";
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(Render, FiguresAreWholePngsAndUnwritablePathsThrow) {
  const std::string dir = (fs::temp_directory_path() / ("tailor_render_" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  Tile img{5, 5, std::vector<uint8_t>(25, 0)};
  for (int i = 6; i < 19; ++i) img.pixels[static_cast<size_t>(i)] = 200;
  confusion_png(dir + "/c.png", {5, 1, 2, 7}, {"x#1", "y"}, "title with # sign");
  gallery_png(dir + "/g.png", "gallery", {{img, {"true: x", "pred: y 90%", "test image 1"}}}, 6, "none");
  gallery_png(dir + "/empty.png", "gallery", {}, 6, "No test image was misclassified.");
  SaliencyFigure f;
  f.image = img;
  f.gradient.assign(25, 0.5f);
  f.occlusion.assign(25, -0.25f);
  f.title = "t";
  saliency_png(dir + "/s.png", f);
  for (const char* name : {"c.png", "g.png", "empty.png", "s.png"}) {
    EXPECT_TRUE(png_info(dir + "/" + name).valid) << name;
    EXPECT_FALSE(fs::exists(dir + "/" + name + ".tmp")) << name;
  }
  f.gradient.resize(3);
  EXPECT_THROW(saliency_png(dir + "/bad.png", f), Error) << "maps must match the image";
  EXPECT_THROW(confusion_png(dir + "/none/c.png", {1}, {"a"}, "t"), Error);
  EXPECT_FALSE(fs::exists(dir + "/bad.png"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tailor
