#pragma once
// What `tailor inspect` writes: the confusion heat map, the gallery of confident mistakes and the
// saliency figures as PNG (PLplot, cairo PNG driver), the CSV tables, and one HTML page tying
// them together. Every file goes to NAME.tmp and is renamed when complete.
#include <cstdint>
#include <string>
#include <vector>

#include "inspect/analysis.hpp"

namespace tailor {

// One test image as a Dataset holds it: `channels` planes (1 grey, 3 red/green/blue) of (rows,
// cols) bytes, row-major, 0 = dark.
struct Tile {
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;
  int channels = 1;
};

// ---- PNG figures ----

// Heat map of the row-normalised confusion matrix (percent of each true class), the count in
// every cell, class names on both axes (predicted ones slanted), a colour bar, `title` on top.
// counts: (classes, classes), counts[t * classes + p].
void confusion_png(const std::string& path, const std::vector<int64_t>& counts,
                   const std::vector<std::string>& classes, const std::string& title);

// A grid of enlarged images, each captioned with up to three lines (the second drawn dark red).
struct GalleryItem {
  Tile image;
  std::vector<std::string> caption;
};
// No items gives a figure that says `empty_text`.
void gallery_png(const std::string& path, const std::string& title, const std::vector<GalleryItem>& items,
                 int columns, const std::string& empty_text);

// Three panels side by side: the image, the gradient saliency (scaled to [0, 1], a sequential
// colour map), the occlusion sensitivity (scaled to [-1, 1], a diverging map). The object's
// outline is drawn over both maps; a colour bar under each panel says what the colours mean.
struct SaliencyFigure {
  Tile image;
  std::vector<float> gradient;   // (rows*cols) in [0, 1]
  std::vector<float> occlusion;  // (rows*cols) in [-1, 1]
  std::string title, subtitle;
  std::string gradient_label, occlusion_label;  // under the colour bars
};
void saliency_png(const std::string& path, const SaliencyFigure& fig);

// ---- Tables (CSV text; the caller writes them with write_file_atomic) ----

// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(const std::string& s);
// Header "true\pred,<classes...>", then one row per true class: counts.
std::string confusion_csv(const std::vector<int64_t>& counts, const std::vector<std::string>& classes);
// The same layout, each row as percent of its true class (0 for an empty row), 2 decimals.
std::string confusion_normalised_csv(const std::vector<int64_t>& counts, const std::vector<std::string>& classes);
// class,support,predicted,correct,precision,recall,f1 (the last three in percent).
std::string per_class_csv(const std::vector<ClassStats>& stats, const std::vector<std::string>& classes);

// The most confused pair: the largest off-diagonal count (the first in row-major order on a
// tie). count == 0 when there are no mistakes.
struct ConfusedPair {
  int truth = 0, pred = 0;
  int64_t count = 0;
  double row_percent = 0;  // of the true class
};
ConfusedPair most_confused(const std::vector<int64_t>& counts, int64_t classes);

// ---- The HTML page ----

std::string html_escape(const std::string& s);

struct ExplainedImage {
  int64_t index = 0;
  int truth = 0, pred = 0;
  double prob = 0;   // of pred, in [0, 1]
  std::string png;   // relative to the page, e.g. "saliency/17.png"
};

struct InspectPage {
  std::string run, model, data_dir;
  int64_t weights = 0;
  std::vector<std::string> classes;
  std::vector<int64_t> counts;       // (classes, classes)
  std::vector<ClassStats> stats;
  std::vector<ExplainedImage> mistakes;  // the gallery, in order (png unused)
  std::vector<ExplainedImage> saliency;
  int patch = 0, stride = 0;
  std::vector<std::string> files;    // every other file written, relative: linked from the page
};
// One self-contained page (inline CSS, no scripts, nothing fetched from the network) that links
// the figures and tables by relative paths.
std::string inspect_html(const InspectPage& page);

}  // namespace tailor
