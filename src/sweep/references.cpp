#include "sweep/references.hpp"

#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include "nn/model_spec.hpp"
#include "util/error.hpp"

namespace tailor {

std::vector<ReferencePoint> parse_references(const std::string& text, const std::string& name) {
  std::vector<ReferencePoint> points;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos || line.rfind("label,", 0) == 0) continue;
    auto fail = [&](const std::string& what) { throw Error(fmt::format("{}:{}: {}", name, number, what)); };
    // label,weights,test_acc,source: the source is the rest of the line and may hold commas.
    std::vector<std::string> f;
    size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      const size_t comma = line.find(',', start);
      if (comma == std::string::npos) fail("wants label,weights,test_acc,source");
      f.push_back(line.substr(start, comma - start));
      start = comma + 1;
    }
    ReferencePoint p;
    p.label = f[0];
    p.source = line.substr(start);
    if (p.label.empty()) fail("the label is empty");
    try {
      p.weights = static_cast<double>(parse_weight_count(f[1]));
    } catch (const Error&) {
      fail(fmt::format("weights '{}' is not a count from 1 to 1e9 (examples: 83k, 12500, 1.5M)", f[1]));
    }
    try {
      size_t used = 0;
      p.test_acc = std::stod(f[2], &used);
      if (used != f[2].size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      fail(fmt::format("test_acc '{}' is not a number", f[2]));
    }
    if (!(p.test_acc >= 0 && p.test_acc <= 100)) fail(fmt::format("test_acc {} is not a percentage", f[2]));
    points.push_back(std::move(p));
  }
  return points;
}

}  // namespace tailor
