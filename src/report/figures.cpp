#include "report/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <plplot/plplot.h>

#include "report/png_stream.hpp"
#include "sweep/references.hpp"
#include "sweep/run_data.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// cmap0: 0 white background, 1 black ink, 2 light grey grid, 3.. the Tableau 10 series colours.
constexpr PLINT kR[] = {255, 0, 220, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23};
constexpr PLINT kG[] = {255, 0, 220, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190};
constexpr PLINT kB[] = {255, 0, 220, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207};
constexpr int kSeriesColours = 10;
const char* const kMarkers[] = {"#(840)", "#(841)", "#(842)", "#(843)", "#(844)", "#(852)", "#(851)"};

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  // Widens the range by frac of itself on each side; a range PLplot cannot draw (empty, or so
  // wide that it overflows: a loss of 1e38 before a run diverged) falls back to 0..1 or to
  // the values themselves.
  void pad(double frac) {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-9 * std::max(1.0, std::abs(hi))) {  // one value: a band around it
      const double d = std::max(0.5, 0.05 * std::abs(hi));
      lo -= d, hi += d;
    }
    const double p = (hi - lo) * frac;
    if (std::isfinite(lo - p) && std::isfinite(hi + p)) lo -= p, hi += p;
    if (!std::isfinite(hi - lo)) lo = std::max(lo, -1e30), hi = std::min(hi, 1e30);
  }
};

// One chart on its own PNG stream.
class Figure {
 public:
  Figure(const std::string& path, int width, int height)
      : png_(path, width, height, kR, kG, kB, static_cast<int>(sizeof(kR) / sizeof(kR[0]))) {
    plschr(0, 0.85);
  }
  // Axes box with a light grid, then labels, in the viewport x0..x1 (fractions of the page
  // width) that leaves room for a legend. Epochs are whole numbers: integer_x ticks at whole
  // steps with no subticks (PLplot would put ticks at 1.2, 1.4, ... on a short run).
  void axes(const Range& x, const Range& y, bool log_x, const std::string& title, const std::string& xl,
            const std::string& yl, double x0, double x1, bool integer_x = false, double y1 = 0.9) {
    if (x0 < 0.05) pladv(0);  // the page's first (or only) plot
    plvpor(x0 + 0.09, x1, 0.11, y1);
    plwind(log_x ? std::log10(x.lo) : x.lo, log_x ? std::log10(x.hi) : x.hi, y.lo, y.hi);
    const char* xo = log_x ? "l" : "";
    PLFLT xtick = 0;
    PLINT xsub = 0;
    if (integer_x && std::isfinite(x.hi - x.lo)) {
      xtick = std::max(1.0, std::ceil((x.hi - x.lo) / 10.0));
      xsub = 1;
    }
    plcol0(2);
    plbox((std::string("g") + (log_x ? "l" : "")).c_str(), xtick, xsub, "g", 0, 0);
    plcol0(1);
    plbox((std::string("bcnst") + xo).c_str(), xtick, xsub, "bcnstv", 0, 0);
    pllab(xl.c_str(), yl.c_str(), title.c_str());
  }
  // markers[i]: index into kMarkers of series i.
  // inside: in the plot's lower right corner (a per-run figure's two series) instead of outside.
  // colours (optional): series i is drawn in colour 3 + colours[i] (default: 3 + i).
  void legend(const std::vector<std::string>& names, bool lines, const std::vector<int>& markers, bool inside = false,
              const std::vector<int>& colours = {}) {
    const int n = static_cast<int>(names.size());
    std::vector<PLINT> opt(n, lines ? (PL_LEGEND_LINE | PL_LEGEND_SYMBOL) : PL_LEGEND_SYMBOL), tc(n, 1), lc(n), ls(n, 1),
        sc(n), sn(n, 1);
    std::vector<PLFLT> lw(n, 2.0), ss(n, 1.0);
    std::vector<const char*> text(n), sym(n);
    for (int i = 0; i < n; ++i) {
      lc[i] = sc[i] = 3 + (colours.empty() ? i : colours[i]) % kSeriesColours;
      text[i] = names[i].c_str();
      sym[i] = kMarkers[markers[i] % 7];
    }
    PLFLT w, h;
    plcol0(1);
    // To the right of the plot, centred vertically; smaller text when there are many runs.
    const PLFLT text_scale = n > 12 ? 0.6 : 0.8;
    const PLINT where = inside ? (PL_POSITION_RIGHT | PL_POSITION_BOTTOM | PL_POSITION_INSIDE)
                               : (PL_POSITION_RIGHT | PL_POSITION_OUTSIDE);
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, where, 0.02, inside ? 0.03 : 0.0, 0.06,
             0, 1, 1, 0, 0, n, opt.data(), 0.8, text_scale, 1.6, 0.0, tc.data(), text.data(), nullptr, nullptr,
             nullptr, nullptr, lc.data(), ls.data(), lw.data(), sc.data(), ss.data(), sn.data(), sym.data());
  }
  void finish() { png_.finish(); }

 private:
  PngStream png_;
};

// The right edge of the plot so that a legend of these names fits beside it on a 1000-pixel page:
// about 0.0085 of the width per character at the legend's text size, plus its line sample.
double plot_right_edge(const std::vector<std::string>& names) {
  size_t longest = 0;
  for (const auto& n : names) longest = std::max(longest, n.size());
  const double scale = names.size() > 12 ? 0.6 / 0.8 : 1.0;
  return std::clamp(0.95 - (0.09 + 0.0085 * scale * static_cast<double>(longest)), 0.45, 0.8);
}

}  // namespace

void line_chart_png(const std::string& path, const std::string& title, const std::string& xlabel,
                    const std::string& ylabel, const std::vector<Series>& series) {
  Range x, y;
  for (const auto& s : series) {
    for (double v : s.x) x.add(v);
    for (double v : s.y) y.add(v);
  }
  if (!(x.lo <= x.hi)) x.lo = 1, x.hi = 2;  // no points at all (a run that diverged in its first epoch)
  if (x.lo == x.hi) x.hi = x.lo + 1;
  if (xlabel == "epoch") x.lo -= 0.3, x.hi += 0.3;  // the first and last markers inside the box
  y.pad(0.05);
  std::vector<std::string> names;
  for (const auto& s : series) names.push_back(s.name);
  Figure f(path, 1000, 560);
  f.axes(x, y, false, title, xlabel, ylabel, 0.03, plot_right_edge(names), xlabel == "epoch");
  plwidth(2);
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    plcol0(3 + static_cast<PLINT>(i % kSeriesColours));
    plline(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data());
    plstring(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data(), kMarkers[(i / kSeriesColours) % 7]);
  }
  plwidth(1);
  std::vector<int> markers;
  for (size_t i = 0; i < series.size(); ++i) markers.push_back(static_cast<int>(i / kSeriesColours));
  f.legend(names, true, markers);
  f.finish();
}

void run_curves_png(const std::string& path, const std::string& title, const std::vector<EpochRow>& rows) {
  Series loss{"training loss", {}, {}}, val{"validation", {}, {}}, test{"test", {}, {}};
  Range x, yl, ya;
  for (const EpochRow& e : rows) {
    x.add(e.epoch);
    loss.x.push_back(e.epoch), loss.y.push_back(e.train_loss), yl.add(e.train_loss);
    if (!std::isnan(e.val_acc)) val.x.push_back(e.epoch), val.y.push_back(e.val_acc), ya.add(e.val_acc);
    test.x.push_back(e.epoch), test.y.push_back(e.test_acc), ya.add(e.test_acc);
  }
  if (!(x.lo < x.hi)) {  // one epoch (or none): a unit-wide axis around it
    x.lo = std::isfinite(x.lo) ? x.lo : 1;
    x.hi = x.lo;
  }
  x.lo -= 0.3;  // the first and last epochs' markers stay inside the box
  x.hi += 0.3;
  yl.pad(0.08);
  ya.pad(0.08);
  Figure f(path, 1000, 460);
  // Left: the training loss; right: validation and test accuracy (the study's Figures 2-7).
  f.axes(x, yl, false, "Training loss", "epoch", "training loss", 0.0, 0.46, true, 0.82);
  plwidth(2);
  plcol0(3);
  plline(static_cast<PLINT>(loss.x.size()), loss.x.data(), loss.y.data());
  plstring(static_cast<PLINT>(loss.x.size()), loss.x.data(), loss.y.data(), kMarkers[0]);
  plwidth(1);
  f.axes(x, ya, false, "Accuracy", "epoch", "accuracy (%)", 0.5, 0.96, true, 0.82);
  plwidth(2);
  std::vector<std::string> names;
  std::vector<int> markers;
  for (const Series* s : {&val, &test}) {
    if (s->x.empty()) continue;
    const int k = 1 + (s == &test);  // colour 3 + k and marker k, the same with or without val
    plcol0(3 + k);
    plline(static_cast<PLINT>(s->x.size()), s->x.data(), s->y.data());
    plstring(static_cast<PLINT>(s->x.size()), s->x.data(), s->y.data(), kMarkers[k]);
    names.push_back(s->name);
    markers.push_back(k);
  }
  plwidth(1);
  f.legend(names, true, markers, true, markers);
  // The run's name across the top of the page.
  plvpor(0.0, 1.0, 0.0, 1.0);
  plwind(0, 1, 0, 1);
  plcol0(1);
  plschr(0, 1.0);
  plptex(0.5, 0.94, 1, 0, 0.5, title.c_str());
  f.finish();
}

void write_run_curves(const std::string& run_dir, const std::string& title) {
  run_curves_png(run_dir + "/curves.png", title, read_metrics(run_dir + "/metrics.csv"));
}

void scatter_png(const std::string& path, const std::string& title, const std::string& xlabel,
                 const std::string& ylabel, const std::vector<Series>& series, bool log_x) {
  Range x, y;
  for (const auto& s : series) {
    for (double v : s.x) x.add(v);
    for (double v : s.y) y.add(v);
  }
  if (log_x) {
    x.lo = std::pow(10.0, std::floor(std::log10(std::max(x.lo, 1.0)) - 0.1));
    x.hi = std::pow(10.0, std::ceil(std::log10(std::max(x.hi, 10.0)) + 0.1));
  } else {
    x.pad(0.05);
  }
  y.pad(0.08);
  Figure f(path, 1000, 560);
  std::vector<std::string> labels;
  for (const auto& s : series) labels.push_back(s.name);
  f.axes(x, y, log_x, title, xlabel, ylabel, 0.03, plot_right_edge(labels));
  for (size_t i = 0; i < series.size(); ++i) {
    std::vector<double> xs = series[i].x;
    if (log_x)
      for (double& v : xs) v = std::log10(v);
    plcol0(3 + static_cast<PLINT>(i % kSeriesColours));
    plschr(0, 1.4);
    plstring(static_cast<PLINT>(xs.size()), xs.data(), series[i].y.data(), kMarkers[i % 7]);
    plschr(0, 0.85);
  }
  std::vector<std::string> names;
  std::vector<int> markers;
  for (size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    markers.push_back(static_cast<int>(i));
  }
  f.legend(names, false, markers);
  f.finish();
}

int write_sweep_figures(const std::string& dir) {
  std::vector<Series> loss, val, test;
  std::map<std::string, Series> by_family;
  int files = 0;
  for (const TrialRecord& t : read_trials(dir)) {
    if (!t.finished) continue;
    const std::string run = t.label();
    Series l{run, {}, {}}, v{run, {}, {}}, te{run, {}, {}};
    for (const EpochRow& e : read_metrics(t.dir + "/metrics.csv")) {
      l.x.push_back(e.epoch), l.y.push_back(e.train_loss);
      if (!std::isnan(e.val_acc)) v.x.push_back(e.epoch), v.y.push_back(e.val_acc);
      te.x.push_back(e.epoch), te.y.push_back(e.test_acc);
    }
    // Per run: the study's pair of curves, training loss and validation accuracy.
    line_chart_png(t.dir + "/loss.png", "Training loss: " + run, "epoch", "training loss", {l});
    line_chart_png(t.dir + "/val_acc.png", "Validation accuracy: " + run, "epoch", "validation accuracy (%)", {v});
    files += 2;
    loss.push_back(l), val.push_back(v), test.push_back(te);
    // One series per family, and per pooling kind for CNNs other than max-pooled ones (a sweep
    // over --pool, experiments/pooling.toml, gets one marker per pool).
    const std::string family = t.summary.at("model").value("family", std::string("?"));
    const std::string pool = t.summary.at("model").value("pool", std::string("max"));
    const std::string key = family == "cnn" && pool != "max" ? family + " " + pool + "-pool" : family;
    Series& fam = by_family[key];
    fam.name = family == "fcn" ? "FCN" : family == "cnn" ? "CNN" : family;
    if (key != family) fam.name += " " + pool + "-pool";
    fam.x.push_back(t.summary.value("weights", 0.0));
    fam.y.push_back(t.summary.value("test_acc", NAN));
  }
  if (loss.empty()) return files;
  std::filesystem::create_directories(dir + "/figures");
  line_chart_png(dir + "/figures/train_loss.png", "Training loss", "epoch", "training loss", loss);
  line_chart_png(dir + "/figures/val_acc.png", "Validation accuracy", "epoch", "validation accuracy (%)", val);
  line_chart_png(dir + "/figures/test_acc.png", "Test accuracy", "epoch", "test accuracy (%)", test);
  std::vector<Series> families;
  const bool pools_vary = std::any_of(by_family.begin(), by_family.end(),
                                      [](const auto& kv) { return kv.first.rfind("cnn ", 0) == 0; });
  for (auto& [k, s] : by_family) {
    families.push_back(s);
    if (k == "cnn" && pools_vary) families.back().name = "CNN max-pool";
  }
  // Published results the sweep file named (references.csv, copied there by `tailor sweep`), one
  // series per label, in the order the file first names them.
  const std::string refs = dir + "/references.csv";
  if (std::filesystem::exists(refs)) {
    const size_t first = families.size();
    for (const ReferencePoint& p : parse_references(read_file(refs), refs)) {
      auto it = std::find_if(families.begin() + static_cast<std::ptrdiff_t>(first), families.end(),
                             [&](const Series& s) { return s.name == p.label; });
      if (it == families.end()) it = families.insert(families.end(), Series{p.label, {}, {}});
      it->x.push_back(p.weights), it->y.push_back(p.test_acc);
    }
  }
  scatter_png(dir + "/figures/accuracy_vs_weights.png", "Test accuracy against weight count", "weights",
              "test accuracy (%)", families, true);
  return files + 4;
}

}  // namespace tailor
