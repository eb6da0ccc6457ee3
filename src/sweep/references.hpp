#pragma once
// Published results drawn beside a sweep's own: a CSV file named by the sweep file's top-level
// `references` key, one point per line,
//
//   label,weights,test_acc,source
//   study Table 1 (CNN),100k,91.20,../shared/study (PyTorch; 20 epochs)
//
// `label` names the series in the legend of figures/accuracy_vs_weights.png (points with the same
// label are one series), `weights` is a count or a budget ("83k", "1.2M"), `test_acc` a percentage,
// and `source` says where the figure comes from (kept in the CSV and the docs, not drawn). The
// sweep copies the file into its directory as references.csv, so `tailor report` redraws it.
#include <string>
#include <vector>

namespace tailor {

struct ReferencePoint {
  std::string label;
  double weights = 0, test_acc = 0;
  std::string source;
};

// Parses the CSV text; a bad line is one tailor::Error "NAME:LINE: what". A header line that
// starts with "label," is skipped, as are blank lines.
std::vector<ReferencePoint> parse_references(const std::string& text, const std::string& name);

}  // namespace tailor
