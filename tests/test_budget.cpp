// Weight-budget sizing: every family lands within +-5% of every target from 10k to 500k, and the
// analytic count equals what the built model really holds.
#include <cmath>

#include <gtest/gtest.h>

#include "nn/model_spec.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

struct Case {
  Family family;
  bool batchnorm;
};

class Budget : public ::testing::TestWithParam<Case> {};

TEST_P(Budget, WithinFivePercentFrom10kTo500k) {
  ModelSpec tmpl = default_spec(GetParam().family);
  tmpl.batchnorm = GetParam().batchnorm;
  for (int64_t target : {10000, 12500, 20000, 50000, 100000, 200000, 300000, 500000}) {
    ModelSpec s = fit_to_budget(tmpl, target);
    const int64_t got = count_weights(s);
    EXPECT_LE(std::abs(got - target), target / 20) << family_name(s.family) << " " << target << " -> " << got
                                                     << " (" << s.widths_str() << ")";
    // The built model holds exactly the counted parameters.
    EXPECT_EQ(static_cast<int64_t>(build_model(s, 1)->num_values()), got);
    // The shape is kept: the same number of blocks and layers as the template.
    EXPECT_EQ(s.hidden.size(), tmpl.hidden.size());
    EXPECT_EQ(s.channels.size(), tmpl.channels.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Families, Budget,
                         ::testing::Values(Case{Family::fcn, true}, Case{Family::fcn, false}, Case{Family::cnn, true},
                                           Case{Family::cnn, false}));

TEST(Budget, StudySizesAreKept) {
  // The study's FCN-100k (784-120-60-10 with batch norm) and CNN-100k counts, as PyTorch counts them.
  ModelSpec fcn = default_spec(Family::fcn);
  fcn.hidden = {120, 60};
  EXPECT_EQ(count_weights(fcn), 784 * 120 + 120 + 240 + 120 * 60 + 60 + 120 + 60 * 10 + 10);
  ModelSpec cnn = default_spec(Family::cnn);
  cnn.channels = {16, 32};
  cnn.hidden = {60};
  EXPECT_EQ(count_weights(cnn), (16 * 9 + 16 + 32) + (32 * 16 * 9 + 32 + 64) + (1568 * 60 + 60 + 120) + (60 * 10 + 10));
}

TEST(Budget, TooSmallForTheFamilyIsAClearError) {
  try {
    fit_to_budget(default_spec(Family::cnn), 50);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--weights 50 "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("smallest"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fit_to_budget(default_spec(Family::fcn), 100), Error);
}

TEST(Budget, ParsesCounts) {
  EXPECT_EQ(parse_weight_count("100k"), 100000);
  EXPECT_EQ(parse_weight_count("12500"), 12500);
  EXPECT_EQ(parse_weight_count("1.5M"), 1500000);
  EXPECT_EQ(parse_weight_count("50K"), 50000);
  for (const char* bad : {"", "abc", "10kb", "-5k", "0", "1e12"}) EXPECT_THROW(parse_weight_count(bad), Error) << bad;
}

}  // namespace
}  // namespace tailor
