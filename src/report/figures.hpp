#pragma once
// PNG figures drawn with PLplot (Debian libplplot-dev, cairo PNG driver): labelled axes, a grid,
// and a legend naming every series. Each file is written to a temporary name and renamed.
#include <string>
#include <vector>

#include "sweep/run_data.hpp"

namespace tailor {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

// Lines (with point markers) against a shared x axis; the legend sits to the right of the plot.
void line_chart_png(const std::string& path, const std::string& title, const std::string& xlabel,
                    const std::string& ylabel, const std::vector<Series>& series);

// Points, one colour and marker per series; log_x for weight counts.
void scatter_png(const std::string& path, const std::string& title, const std::string& xlabel,
                 const std::string& ylabel, const std::vector<Series>& series, bool log_x);

// One run's curves.png: training loss (left) and validation and test accuracy (right) by epoch,
// whole-number epoch ticks, `title` across the top; written to a temporary name and renamed.
void run_curves_png(const std::string& path, const std::string& title, const std::vector<EpochRow>& rows);
// The same from RUN_DIR/metrics.csv into RUN_DIR/curves.png.
void write_run_curves(const std::string& run_dir, const std::string& title);

// Every finished trial of SWEEP_DIR gets trials/<id>/curves.png (training loss and validation
// accuracy against epoch, as the study's Figures 2-7); the sweep gets figures/train_loss.png,
// val_acc.png, test_acc.png (all runs overlaid) and accuracy_vs_weights.png (FCN against CNN).
// Returns the number of files written.
int write_sweep_figures(const std::string& sweep_dir);

}  // namespace tailor
