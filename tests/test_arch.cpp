// CNNs built from stages (--arch, nn/arch.hpp): the text form read and written back, every
// malformed form refused with a line naming the fault, --weights sizing every shape within 5%,
// and the sizes and sums a stage list cannot have refused before anything is built.
#include <string>

#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "nn/arch.hpp"
#include "nn/conv2d.hpp"
#include "nn/model_spec.hpp"
#include "nn/residual.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

ModelSpec parsed(const std::string& text) {
  ModelSpec s = default_spec(Family::cnn);
  parse_arch(text, s);
  return s;
}

std::string error_of(const std::string& text) {
  try {
    parsed(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Arch, TextRoundTripsAndDefaults) {
  const ModelSpec s = parsed(" 24 ,max| 48x2,res,max |96x4, res,k5,sep | gap | fc 64, 32 ");
  ASSERT_EQ(s.stages.size(), 3u);
  EXPECT_EQ(s.stages[0].width, 24);
  EXPECT_EQ(s.stages[0].down, Downsample::max);
  EXPECT_EQ(s.stages[1].convs, 2);
  EXPECT_TRUE(s.stages[1].residual);
  EXPECT_EQ(s.stages[2].kernel, 5);
  EXPECT_TRUE(s.stages[2].separable);
  EXPECT_TRUE(s.gap);
  EXPECT_EQ(s.hidden, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(arch_text(s), "24,max | 48x2,res,max | 96x4,k5,res,sep | gap | fc 64,32");
  EXPECT_EQ(arch_text(parsed(arch_text(s))), arch_text(s));
  // The head defaults to global average pooling, no hidden layer.
  const ModelSpec d = parsed("16,s2 | 32,avg");
  EXPECT_TRUE(d.gap);
  EXPECT_TRUE(d.hidden.empty());
  EXPECT_EQ(arch_text(d), "16,s2 | 32,avg | gap");
  EXPECT_FALSE(parsed("8 | flat").gap);
  // Today's CNN-100k, written as stages, is the same model as --channels 16,32 --hidden 60.
  ModelSpec staged = parsed("16,max | 32,max | flat | fc 60");
  EXPECT_EQ(count_weights(staged), count_weights(default_spec(Family::cnn)));
  EXPECT_EQ(forward_flops(staged), forward_flops(default_spec(Family::cnn)));
}

TEST(Arch, MalformedTextIsOneLineNamingTheFault) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "section 1 is empty"},
      {"16 | | 32", "section 2 is empty"},
      {"abc", "starts with 'abc'"},
      {"16x0", "starts with '16x0'"},
      {"0,max", "starts with '0'"},
      {"16,foo", "unknown 'foo'"},
      {"16,max,s2", "one downsample per stage"},
      {"16x3,res", "count must be even"},
      {"gap | 16", "comes after the stages"},
      {"16 | gap | gap", "a second head"},
      {"16 | gap | 32", "after the head"},
      {"16 | fc 10 | gap", "comes before 'fc'"},
      {"16 | fc x", "whole numbers"},
      {"16 | fc 10 | fc 5", "a second 'fc'"}};
  for (const auto& [text, fault] : cases) {
    const std::string e = error_of(text);
    EXPECT_NE(e.find(fault), std::string::npos) << "'" << text << "': " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_EQ(e.rfind("--arch '", 0), 0u) << e;
  }
}

// --weights scales every width together (ratios kept, residual sums' equal widths equal) and lands
// within 5% of the target, for every kind of stage, at the frontier's budgets.
TEST(Arch, WeightsSizeEveryShapeWithinFivePercent) {
  for (const char* text : {"24,max | 48x2,res,max | 96x2,res | gap", "16,max | 32,max | flat | fc 60",
                           "32,max | 64x2,sep,res,max | 128x2,sep,res | gap | fc 64", "16,k5,s2 | 32,k5,s2 | 64,avg | gap",
                           "8,l2 | 16x4,res,s2 | 32x2,res,s2 | gap"})
    for (int64_t target : {10000, 20000, 50000, 100000, 200000}) {
      SCOPED_TRACE(std::string(text) + " at " + std::to_string(target));
      const ModelSpec s = fit_to_budget(parsed(text), target);
      const double got = static_cast<double>(count_weights(s));
      EXPECT_NEAR(got / target, 1.0, 0.05);
      EXPECT_EQ(build_model(s, 0)->num_values(), static_cast<size_t>(got));
    }
}

// A staged CNN whose scaled widths are all 8 or more gets widths of whole multiples of 8 (vectors
// that oneDNN fills), of 16 where the 5% allow it (a whole AVX-512 vector of floats: the frontier's
// 100k model ran an epoch in 12.5 s at 16-32-80 against 18.5-19.8 s at 16-40-72), in the
// template's order; a smaller one keeps its shape.
TEST(Arch, WeightsGiveMultiplesOfEightWhereTheyFit) {
  const ModelSpec tmpl = parsed("24,max | 48x2,res,max | 96x2,res | gap");
  for (int64_t target : {20000, 50000, 100000, 200000}) {
    SCOPED_TRACE(target);
    const ModelSpec s = fit_to_budget(tmpl, target);
    EXPECT_NEAR(static_cast<double>(count_weights(s)) / target, 1.0, 0.05);
    for (size_t i = 0; i < s.stages.size(); ++i) {
      EXPECT_EQ(s.stages[i].width % 16, 0) << s.widths_str();
      if (i > 0) {
        EXPECT_LE(s.stages[i - 1].width, s.stages[i].width) << s.widths_str();
      }
    }
  }
  EXPECT_EQ(fit_to_budget(tmpl, 100000).widths_str(), "16,max | 32x2,res,max | 80x2,res | gap");
  // Multiples of 16 are preferred, not forced: at 120k (scaled 21-42-84) they would take the
  // shape far from the template's (32-48-96 and the like), so multiples of 8 stay.
  const ModelSpec m8 = fit_to_budget(tmpl, 120000);
  EXPECT_EQ(m8.widths_str(), "24,max | 40x2,res,max | 80x2,res | gap");
  EXPECT_NEAR(static_cast<double>(count_weights(m8)) / 120000, 1.0, 0.05);
  const ModelSpec small = fit_to_budget(tmpl, 10000);  // 6-12-23: below a vector, kept
  EXPECT_NE(small.stages[0].width % 8, 0) << small.widths_str();
}

TEST(Arch, ImpossibleSizesAndSumsAreRefused) {
  // Five pools of a 28x28 picture: 14, 7, 3, 1, then nothing left to pool.
  ModelSpec deep = parsed("8,max | 8,max | 8,max | 8,max | 8,max | gap");
  try {
    build_model(deep, 0);
    ADD_FAILURE() << "built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1x1 maps are too small"), std::string::npos) << e.what();
  }
  // A residual block whose body changes the width with no projection cannot add its sum.
  Chain body, skip;
  body.add(std::make_unique<Conv2d>(4, 6, 3, 1));
  Residual bad(std::move(body), std::move(skip), ActivationKind::relu);
  try {
    bad.output_shape(Shape{2, 4, 8, 8});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be added"), std::string::npos) << e.what();
  }
  // A budget below the smallest model of the shape.
  try {
    fit_to_budget(parsed("16,max | 32x2,res | gap"), 100);
    ADD_FAILURE() << "fitted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be met by a cnn of --arch"), std::string::npos) << e.what();
  }
}

// From the command line: each fault one line on stderr, a non-zero exit, no crash.
TEST(Arch, TheCommandLineRefusesInOneLine) {
  const std::string scratch = ::testing::TempDir();
  using testing::expect_one_line_error;
  using testing::run_tailor;
  expect_one_line_error(run_tailor("summary --arch '16,foo'", scratch), "unknown 'foo'");
  expect_one_line_error(run_tailor("summary --arch '8,max | 8,max | 8,max | 8,max | 8,max'", scratch), "too small");
  expect_one_line_error(run_tailor("summary --arch '16,max | 32x2,res | gap' --weights 100", scratch), "cannot be met");
  expect_one_line_error(run_tailor("summary --arch '16' --channels 4", scratch), "--arch");
  expect_one_line_error(run_tailor("summary --model fcn --arch '16'", scratch), "--arch builds a CNN");
  expect_one_line_error(run_tailor("train --arch '16x3,res' --epochs 1", scratch), "even");
}

}  // namespace
}  // namespace tailor
