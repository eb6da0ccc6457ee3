#include "report/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <plplot/plplot.h>

#include "report/png_stream.hpp"
#include "sweep/run_data.hpp"
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
  void pad(double frac) {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    const double p = (hi - lo) * frac;
    lo -= p;
    hi += p;
  }
};

// One chart on its own PNG stream.
class Figure {
 public:
  Figure(const std::string& path, int width, int height)
      : png_(path, width, height, kR, kG, kB, static_cast<int>(sizeof(kR) / sizeof(kR[0]))) {
    plschr(0, 0.85);
  }
  // Axes box with a light grid, then labels, in a viewport that leaves room for a legend.
  void axes(const Range& x, const Range& y, bool log_x, const std::string& title, const std::string& xl,
            const std::string& yl, bool legend_room) {
    pladv(0);
    plvpor(0.09, legend_room ? 0.66 : 0.95, 0.11, 0.9);
    plwind(log_x ? std::log10(x.lo) : x.lo, log_x ? std::log10(x.hi) : x.hi, y.lo, y.hi);
    const char* xo = log_x ? "l" : "";
    plcol0(2);
    plbox((std::string("g") + (log_x ? "l" : "")).c_str(), 0, 0, "g", 0, 0);
    plcol0(1);
    plbox((std::string("bcnst") + xo).c_str(), 0, 0, "bcnstv", 0, 0);
    pllab(xl.c_str(), yl.c_str(), title.c_str());
  }
  // markers[i]: index into kMarkers of series i.
  void legend(const std::vector<std::string>& names, bool lines, const std::vector<int>& markers) {
    const int n = static_cast<int>(names.size());
    std::vector<PLINT> opt(n, lines ? (PL_LEGEND_LINE | PL_LEGEND_SYMBOL) : PL_LEGEND_SYMBOL), tc(n, 1), lc(n), ls(n, 1),
        sc(n), sn(n, 1);
    std::vector<PLFLT> lw(n, 2.0), ss(n, 1.0);
    std::vector<const char*> text(n), sym(n);
    for (int i = 0; i < n; ++i) {
      lc[i] = sc[i] = 3 + i % kSeriesColours;
      text[i] = names[i].c_str();
      sym[i] = kMarkers[markers[i] % 7];
    }
    PLFLT w, h;
    plcol0(1);
    // To the right of the plot, centred vertically; smaller text when there are many runs.
    const PLFLT text_scale = n > 12 ? 0.6 : 0.8;
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.0, 0.06,
             0, 1, 1, 0, 0, n, opt.data(), 0.8, text_scale, 1.6, 0.0, tc.data(), text.data(), nullptr, nullptr,
             nullptr, nullptr, lc.data(), ls.data(), lw.data(), sc.data(), ss.data(), sn.data(), sym.data());
  }
  void finish() { png_.finish(); }

 private:
  PngStream png_;
};

}  // namespace

void line_chart_png(const std::string& path, const std::string& title, const std::string& xlabel,
                    const std::string& ylabel, const std::vector<Series>& series) {
  Range x, y;
  for (const auto& s : series) {
    for (double v : s.x) x.add(v);
    for (double v : s.y) y.add(v);
  }
  if (x.lo == x.hi) x.hi = x.lo + 1;
  y.pad(0.05);
  Figure f(path, 1000, 560);
  f.axes(x, y, false, title, xlabel, ylabel, true);
  plwidth(2);
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    plcol0(3 + static_cast<PLINT>(i % kSeriesColours));
    plline(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data());
    plstring(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data(), kMarkers[(i / kSeriesColours) % 7]);
  }
  plwidth(1);
  std::vector<std::string> names;
  std::vector<int> markers;
  for (size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    markers.push_back(static_cast<int>(i / kSeriesColours));
  }
  f.legend(names, true, markers);
  f.finish();
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
  f.axes(x, y, log_x, title, xlabel, ylabel, true);
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
    const std::string family = t.summary.at("model").value("family", std::string("?"));
    Series& fam = by_family[family];
    fam.name = family == "fcn" ? "FCN" : family == "cnn" ? "CNN" : family;
    fam.x.push_back(t.summary.value("weights", 0.0));
    fam.y.push_back(t.summary.value("test_acc", NAN));
  }
  if (loss.empty()) return files;
  std::filesystem::create_directories(dir + "/figures");
  line_chart_png(dir + "/figures/train_loss.png", "Training loss", "epoch", "training loss", loss);
  line_chart_png(dir + "/figures/val_acc.png", "Validation accuracy", "epoch", "validation accuracy (%)", val);
  line_chart_png(dir + "/figures/test_acc.png", "Test accuracy", "epoch", "test accuracy (%)", test);
  std::vector<Series> families;
  for (auto& [k, s] : by_family) families.push_back(s);
  scatter_png(dir + "/figures/accuracy_vs_weights.png", "Test accuracy against weight count", "weights",
              "test accuracy (%)", families, true);
  return files + 4;
}

}  // namespace tailor
