// The PNG figures of `tailor inspect`, drawn with PLplot's cairo PNG driver. Layouts are worked
// out in pixels (a 28x28 image is drawn 4x, text sizes are in pixels) so the figures read the
// same whatever the driver's DPI.
#include "inspect/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>
#include <plplot/plplot.h>

#include "report/png_stream.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// cmap0: 0 white background, 1 black ink, 2 mid grey, 3 dark red, 4 light grey, 5 white ink.
enum Ink : PLINT { kBlack = 1, kGrey = 2, kDarkRed = 3, kLightGrey = 4, kWhite = 5 };
constexpr PLINT kR[] = {255, 0, 120, 170, 200, 255};
constexpr PLINT kG[] = {255, 0, 120, 20, 200, 255};
constexpr PLINT kB[] = {255, 0, 120, 20, 200, 255};

struct Stop {
  double at;
  int r, g, b;
};
// Sequential white -> dark blue (ColorBrewer "Blues"): confusion percentages.
const std::vector<Stop> kBlues{{0, 247, 251, 255}, {0.25, 198, 219, 239}, {0.5, 107, 174, 214}, {0.75, 33, 113, 181}, {1, 8, 48, 107}};
// Sequential white -> dark red ("YlOrRd"): gradient magnitude, 0 = white so the outline shows.
const std::vector<Stop> kHeat{{0, 255, 255, 255}, {0.2, 255, 237, 160}, {0.45, 254, 178, 76}, {0.7, 240, 59, 32}, {1, 128, 0, 38}};
// Diverging blue - white - red ("RdBu" reversed): occlusion sensitivity, 0 = white.
const std::vector<Stop> kDiverging{{0, 33, 102, 172}, {0.25, 146, 197, 222}, {0.5, 247, 247, 247}, {0.75, 244, 165, 130}, {1, 178, 24, 43}};
const std::vector<Stop> kGreys{{0, 0, 0, 0}, {1, 255, 255, 255}};

void use_colour_map(const std::vector<Stop>& stops) {
  std::vector<PLFLT> at, r, g, b;
  for (const Stop& s : stops) at.push_back(s.at), r.push_back(s.r / 255.0), g.push_back(s.g / 255.0), b.push_back(s.b / 255.0);
  plscmap1n(256);
  plscmap1l(1, static_cast<PLINT>(stops.size()), at.data(), r.data(), g.data(), b.data(), nullptr);
}

// Perceived brightness (0..1) of a colour map at t in [0, 1]: picks black or white text.
double brightness(const std::vector<Stop>& stops, double t) {
  t = std::clamp(t, 0.0, 1.0);
  size_t i = 1;
  while (i + 1 < stops.size() && stops[i].at < t) ++i;
  const Stop &a = stops[i - 1], &b = stops[i];
  const double f = b.at > a.at ? (t - a.at) / (b.at - a.at) : 0;
  auto mix = [&](int u, int v) { return (u + f * (v - u)) / 255.0; };
  return 0.299 * mix(a.r, b.r) + 0.587 * mix(a.g, b.g) + 0.114 * mix(a.b, b.b);
}

// PLplot reads '#' as the start of an escape sequence; "##" is a literal '#'.
std::string pl_text(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '#' ? std::string("##") : std::string(1, c);
  return out;
}

// Rough width of a line of text in pixels (PLplot cannot measure a string before drawing it).
double text_width(const std::string& s, double size_px) { return 0.7 * size_px * static_cast<double>(s.size()); }

// One figure on its own PNG stream, in pixel coordinates from the top-left corner.
class Canvas {
 public:
  Canvas(const std::string& path, int width, int height)
      : png_(path, width, height, kR, kG, kB, static_cast<int>(sizeof(kR) / sizeof(kR[0]))), w_(width), h_(height) {
    pladv(0);
    // Character heights are set in mm; the page's size in mm (plgpage gives no DPI for this
    // driver) converts them to pixels.
    PLFLT x0_mm, x1_mm, y0_mm, y1_mm, def_mm, ht_mm;
    plgspa(&x0_mm, &x1_mm, &y0_mm, &y1_mm);
    plgchr(&def_mm, &ht_mm);
    px_per_char_ = def_mm * width / (x1_mm - x0_mm);
  }
  int width() const { return w_; }
  // A viewport at pixel box (x, y, w, h) whose world runs wx0..wx1 left to right, wy0..wy1 up.
  void region(double x, double y, double w, double h, double wx0, double wx1, double wy0, double wy1) const {
    plvpor(x / w_, (x + w) / w_, 1 - (y + h) / h_, 1 - y / h_);
    plwind(wx0, wx1, wy0, wy1);
  }
  // Text centred vertically on pixel row y; just: 0 left-aligned at x, 0.5 centred, 1 right.
  void text(double x, double y, double size_px, double just, const std::string& s, PLINT ink = kBlack,
            double angle_deg = 0) const {
    region(0, 0, w_, h_, 0, w_, 0, h_);
    plschr(0, size_px / px_per_char_);
    plcol0(ink);
    const double a = angle_deg * M_PI / 180;
    plptex(x, h_ - y, std::cos(a), std::sin(a), just, pl_text(s).c_str());
  }
  void finish() { png_.finish(); }

 private:
  PngStream png_;
  int w_, h_;
  double px_per_char_ = 1;
};

// values (rows, cols) row-major, the top row first, clamped to [lo, hi] and drawn through the
// current colour map over the current viewport, whose world becomes (0..cols, 0..rows).
// PLplot colours the cell between grid nodes i and i+1 with node i's value, so cell (r, c) of
// the grid is node (c, rows-1-r) of an (cols+1, rows+1) array; the last column and row repeat.
void draw_grid(const std::vector<double>& values, int rows, int cols, double lo, double hi) {
  plwind(0, cols, 0, rows);
  const int nx = cols + 1, ny = rows + 1;
  std::vector<PLFLT> nodes(static_cast<size_t>(nx) * ny);
  std::vector<const PLFLT*> columns(static_cast<size_t>(nx));
  for (int x = 0; x < nx; ++x) {
    for (int y = 0; y < ny; ++y) {
      const int r = rows - 1 - std::min(y, rows - 1), c = std::min(x, cols - 1);
      nodes[static_cast<size_t>(x) * ny + y] = std::clamp(values[static_cast<size_t>(r) * cols + c], lo, hi);
    }
    columns[static_cast<size_t>(x)] = nodes.data() + static_cast<size_t>(x) * ny;
  }
  // plimagefr, not plimage: plimage spreads the colour map over the data's own range.
  plimagefr(columns.data(), nx, ny, 0, cols, 0, rows, lo, hi, lo, hi, nullptr, nullptr);
}

// A tile's luminance (0..255) per pixel: its one plane, or Rec. 601 weights of its three.
std::vector<double> luminance(const Tile& t) {
  const size_t plane = static_cast<size_t>(t.rows) * static_cast<size_t>(t.cols);
  std::vector<double> v(t.pixels.begin(), t.pixels.begin() + static_cast<ptrdiff_t>(plane));
  if (t.channels == 3)
    for (size_t i = 0; i < plane; ++i)
      v[i] = 0.299 * t.pixels[i] + 0.587 * t.pixels[plane + i] + 0.114 * t.pixels[2 * plane + i];
  return v;
}

// A grey tile through the grey colour map; a colour tile through a colour map of its own colours
// (cell value = the colour's index; more than 4096 colours are first cut to 16 levels a channel).
void draw_tile(const Tile& t) {
  if (t.channels != 3) {
    use_colour_map(kGreys);
    draw_grid(std::vector<double>(t.pixels.begin(), t.pixels.end()), t.rows, t.cols, 0, 255);
    return;
  }
  const size_t plane = static_cast<size_t>(t.rows) * static_cast<size_t>(t.cols);
  auto colour_of = [&](size_t i, uint32_t mask) {
    return ((t.pixels[i] & mask) << 16) | ((t.pixels[plane + i] & mask) << 8) | (t.pixels[2 * plane + i] & mask);
  };
  std::vector<uint32_t> palette;
  for (uint32_t mask : {0xffu, 0xf0u}) {
    palette.clear();
    for (size_t i = 0; i < plane; ++i) palette.push_back(colour_of(i, mask));
    std::sort(palette.begin(), palette.end());
    palette.erase(std::unique(palette.begin(), palette.end()), palette.end());
    if (palette.size() <= 4096) {
      std::vector<double> index(plane);
      for (size_t i = 0; i < plane; ++i)
        index[i] = static_cast<double>(std::lower_bound(palette.begin(), palette.end(), colour_of(i, mask)) - palette.begin());
      // Two entries at least, so that index / (n - 1) is defined.
      if (palette.size() == 1) palette.push_back(palette[0]);
      std::vector<PLINT> r, g, b;
      for (uint32_t c : palette) r.push_back((c >> 16) & 0xff), g.push_back((c >> 8) & 0xff), b.push_back(c & 0xff);
      const auto n = static_cast<PLINT>(palette.size());
      plscmap1n(n);
      plscmap1(r.data(), g.data(), b.data(), n);
      draw_grid(index, t.rows, t.cols, 0, n - 1);
      return;
    }
  }
}

void frame(PLINT ink) {
  plcol0(ink);
  plbox("bc", 0, 0, "bc", 0, 0);
}

// Grid point (i, j) of draw_outline's framed mask -> the centre of pixel (i - 1, j - 1) in
// draw_grid's world.
void pixel_centre(PLFLT i, PLFLT j, PLFLT* x, PLFLT* y, PLPointer) {
  *x = i - 0.5;
  *y = j - 0.5;
}

// The object's outline: the background is the dark pixels (<= 10) reachable from the border;
// everything else, holes in a patterned shirt included, is the object. The line is the 0.5
// contour of that mask.
void draw_outline(const Tile& t) {
  const int rows = t.rows, cols = t.cols;
  const std::vector<double> light = luminance(t);
  std::vector<uint8_t> background(light.size(), 0);
  std::vector<int> stack;
  auto visit = [&](int r, int c) {
    const size_t i = static_cast<size_t>(r) * cols + c;
    if (r < 0 || c < 0 || r >= rows || c >= cols || background[i] || light[i] > 10) return;
    background[i] = 1;
    stack.push_back(static_cast<int>(i));
  };
  for (int r = 0; r < rows; ++r) visit(r, 0), visit(r, cols - 1);
  for (int c = 0; c < cols; ++c) visit(0, c), visit(rows - 1, c);
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    visit(i / cols - 1, i % cols), visit(i / cols + 1, i % cols), visit(i / cols, i % cols - 1), visit(i / cols, i % cols + 1);
  }
  // plcont reads f[x][y] with y up; a one-pixel frame of background closes lines at the border.
  const int nx = cols + 2, ny = rows + 2;
  std::vector<PLFLT> f(static_cast<size_t>(nx) * ny, 0.0);
  std::vector<const PLFLT*> columns(static_cast<size_t>(nx));
  for (int x = 0; x < nx; ++x) {
    for (int y = 1; y <= rows && x >= 1 && x <= cols; ++y)
      f[static_cast<size_t>(x) * ny + y] = background[static_cast<size_t>(rows - y) * cols + (x - 1)] ? 0.0 : 1.0;
    columns[static_cast<size_t>(x)] = f.data() + static_cast<size_t>(x) * ny;
  }
  PLFLT level = 0.5;
  plcol0(kBlack);
  plwidth(1.5);
  plcont(columns.data(), nx, ny, 1, nx, 1, ny, &level, 1, pixel_centre, nullptr);
  plwidth(1);
}

struct Tick {
  double at;  // in the bar's units
  std::string text;
};
std::vector<Tick> even_ticks(double lo, double hi, double step, int decimals) {
  std::vector<Tick> t;
  for (int i = 0; lo + i * step <= hi + 1e-9; ++i) t.push_back({lo + i * step, fmt::format("{:.{}f}", lo + i * step, decimals)});
  return t;
}

// A bar of the current colour map in pixel box (x, y, w, h) for values lo..hi with labelled
// ticks, and `label` (lines split at '\n') under it (horizontal) or beside it (vertical).
void colour_bar(const Canvas& c, double x, double y, double w, double h, double lo, double hi, const std::vector<Tick>& ticks,
                const std::string& label, bool vertical, double font) {
  const int n = 256;
  std::vector<double> ramp(n);
  for (int i = 0; i < n; ++i) ramp[static_cast<size_t>(i)] = lo + (hi - lo) * (i + 0.5) / n;
  if (vertical) std::reverse(ramp.begin(), ramp.end());  // draw_grid takes the top row first
  c.region(x, y, w, h, 0, 1, 0, 1);
  draw_grid(ramp, vertical ? n : 1, vertical ? 1 : n, lo, hi);
  frame(kGrey);
  double widest = 0;
  for (const Tick& t : ticks) {
    const double f = (t.at - lo) / (hi - lo);
    widest = std::max(widest, text_width(t.text, font * 0.85));
    if (vertical) c.text(x + w + 6, y + h - f * h, font * 0.85, 0, t.text);
    else c.text(x + f * w, y + h + font * 0.8, font * 0.85, 0.5, t.text);
  }
  std::vector<std::string> lines;
  for (size_t a = 0, b; a <= label.size(); a = b + 1) {
    b = std::min(label.find('\n', a), label.size());
    lines.push_back(label.substr(a, b - a));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (vertical) c.text(x + w + 10 + widest + font * (0.7 + 1.3 * i), y + h / 2, font, 0.5, lines[i], kBlack, 90);
    else c.text(x + w / 2, y + h + font * (2.1 + 1.3 * i), font, 0.5, lines[i]);
  }
}

}  // namespace

void confusion_png(const std::string& path, const std::vector<int64_t>& counts, const std::vector<std::string>& classes,
                   const std::string& title) {
  const int k = static_cast<int>(classes.size());
  if (k == 0 || counts.size() != static_cast<size_t>(k) * k) throw Error("confusion matrix does not match the class count");
  const double cell = std::clamp(600.0 / k, 24.0, 110.0), side = cell * k;
  const double font = 15, cell_font = std::min(15.0, cell * 0.28);
  double longest = 0;
  for (const auto& name : classes) longest = std::max(longest, text_width(name, font));
  const double top = 80, bottom = 70 + longest * 0.66, right = 170;
  const double width = std::max(40 + longest + 14 + side + right, text_width(title, 20) + 40);
  const double left = (width - side - right + longest + 54) / 2;  // the matrix and its labels centred
  Canvas c(path, static_cast<int>(width), static_cast<int>(top + side + bottom));

  // Row percentages; the colour is their square root, so the small shares where the mistakes
  // are stand out from the white of the empty cells.
  std::vector<double> pct(counts.size(), 0.0), shade(counts.size(), 0.0);
  for (int t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int p = 0; p < k; ++p) row += counts[static_cast<size_t>(t * k + p)];
    for (int p = 0; p < k; ++p) {
      const size_t i = static_cast<size_t>(t * k + p);
      pct[i] = row ? 100.0 * static_cast<double>(counts[i]) / static_cast<double>(row) : 0;
      shade[i] = std::sqrt(pct[i] / 100);
    }
  }
  use_colour_map(kBlues);
  c.region(left, top, side, side, 0, k, 0, k);
  draw_grid(shade, k, k, 0, 1);
  frame(kBlack);

  for (int t = 0; t < k; ++t)
    for (int p = 0; p < k; ++p) {
      const size_t i = static_cast<size_t>(t * k + p);
      const double cx = left + (p + 0.5) * cell, cy = top + (t + 0.5) * cell;
      const PLINT ink = counts[i] == 0 ? kGrey : brightness(kBlues, shade[i]) < 0.5 ? kWhite : kBlack;
      const bool two_lines = cell >= 54 && counts[i] > 0;
      if (cell >= 24) c.text(cx, two_lines ? cy - cell * 0.13 : cy, cell_font, 0.5, std::to_string(counts[i]), ink);
      if (two_lines) c.text(cx, cy + cell * 0.2, cell_font * 0.75, 0.5, fmt::format("{:.1f}%", pct[i]), ink);
    }
  // True classes on the left, predicted classes slanted under the columns.
  for (int t = 0; t < k; ++t) c.text(left - 10, top + (t + 0.5) * cell, font, 1, classes[static_cast<size_t>(t)]);
  for (int p = 0; p < k; ++p)
    c.text(left + (p + 0.5) * cell + 4, top + side + 12, font, 1, classes[static_cast<size_t>(p)], kBlack, 40);
  c.text(left - longest - 36, top + side / 2, font + 2, 0.5, "true class", kBlack, 90);
  c.text(left + side / 2, top + side + bottom - 18, font + 2, 0.5, "predicted class");
  c.text(c.width() / 2.0, 32, 20, 0.5, title);
  c.text(c.width() / 2.0, 58, 13, 0.5, "each cell: images of the row's class predicted as the column's (count, % of the row)", kGrey);
  use_colour_map(kBlues);
  std::vector<Tick> ticks;
  for (int v : {0, 1, 5, 10, 25, 50, 75, 100}) ticks.push_back({std::sqrt(v / 100.0), std::to_string(v)});
  colour_bar(c, left + side + 30, top, 22, side, 0, 1, ticks, "% of the true class (row)\nsquare-root scale", true, font);
  c.finish();
}

void gallery_png(const std::string& path, const std::string& title, const std::vector<GalleryItem>& items, int columns,
                 const std::string& empty_text) {
  columns = std::max(1, std::min(columns, static_cast<int>(std::max<size_t>(items.size(), 1))));
  const int rows = std::max(1, static_cast<int>((items.size() + columns - 1) / columns));
  const int img_rows = items.empty() ? 28 : items[0].image.rows, img_cols = items.empty() ? 28 : items[0].image.cols;
  const double scale = std::max(1.0, std::round(136.0 / std::max(img_rows, img_cols)));
  const double iw = img_cols * scale, ih = img_rows * scale, font = 14, line = 18;
  double caption_w = 0;
  size_t lines = 0;
  for (const auto& it : items) {
    lines = std::max(lines, it.caption.size());
    for (const auto& s : it.caption) caption_w = std::max(caption_w, text_width(s, font));
  }
  const double tile_w = std::max(iw, caption_w) + 24, tile_h = ih + 10 + lines * line + 16, top = 70;
  const double w = std::max({columns * tile_w + 40, 560.0, text_width(title, 20) + 40}),
               h = items.empty() ? 160 : top + rows * tile_h + 10;
  Canvas c(path, static_cast<int>(w), static_cast<int>(h));
  c.text(w / 2, 30, 20, 0.5, title);
  if (items.empty()) c.text(w / 2, 100, 16, 0.5, empty_text, kGrey);
  const double x0 = (w - columns * tile_w) / 2;
  for (size_t i = 0; i < items.size(); ++i) {
    const GalleryItem& it = items[i];
    const double tx = x0 + static_cast<double>(i % columns) * tile_w, ty = top + static_cast<double>(i / columns) * tile_h;
    const double ix = tx + (tile_w - iw) / 2;
    c.region(ix, ty, iw, ih, 0, 1, 0, 1);
    draw_tile(it.image);
    frame(kGrey);
    for (size_t l = 0; l < it.caption.size(); ++l)
      c.text(tx + tile_w / 2, ty + ih + 6 + (l + 0.5) * line, font, 0.5, it.caption[l], l == 1 ? kDarkRed : l == 0 ? kBlack : kGrey);
  }
  c.finish();
}

void saliency_png(const std::string& path, const SaliencyFigure& f) {
  const Tile& img = f.image;
  const size_t n = static_cast<size_t>(img.rows) * img.cols;
  if (img.pixels.size() != n * static_cast<size_t>(img.channels) || f.gradient.size() != n || f.occlusion.size() != n)
    throw Error("saliency maps do not match the image size");
  const double panel = 270, gap = 90, margin = 50, top = 112, font = 14;
  const double w = std::max({2 * margin + 3 * panel + 2 * gap, text_width(f.title, 20) + 40, text_width(f.subtitle, 13) + 40});
  const double h = top + panel + 110, x0 = (w - 3 * panel - 2 * gap) / 2;
  Canvas c(path, static_cast<int>(w), static_cast<int>(h));
  c.text(w / 2, 30, 20, 0.5, f.title);
  c.text(w / 2, 60, 13, 0.5, f.subtitle, kGrey);
  const char* heads[] = {"image", "gradient saliency", "occlusion sensitivity"};
  for (int p = 0; p < 3; ++p) {
    const double x = x0 + p * (panel + gap);
    c.text(x + panel / 2, top - 18, 16, 0.5, heads[p]);
    c.region(x, top, panel, panel, 0, 1, 0, 1);
    if (p == 0) {
      draw_tile(img);
    } else {
      use_colour_map(p == 1 ? kHeat : kDiverging);
      const auto& map = p == 1 ? f.gradient : f.occlusion;
      draw_grid(std::vector<double>(map.begin(), map.end()), img.rows, img.cols, p == 1 ? 0 : -1, 1);
      draw_outline(img);
    }
    c.region(x, top, panel, panel, 0, 1, 0, 1);
    frame(kGrey);
    const double by = top + panel + 14;
    if (p == 0 && img.channels == 3) {
      c.text(x + panel / 2, by + 7, font, 0.5, "colour picture (the model's RGB input)");
    } else if (p == 0) {
      use_colour_map(kGreys);
      colour_bar(c, x, by, panel, 14, 0, 255, even_ticks(0, 255, 51, 0), "pixel value (0 = black)", false, font);
    } else if (p == 1) {
      use_colour_map(kHeat);
      colour_bar(c, x, by, panel, 14, 0, 1, even_ticks(0, 1, 0.25, 2), f.gradient_label, false, font);
    } else {
      use_colour_map(kDiverging);
      colour_bar(c, x, by, panel, 14, -1, 1, even_ticks(-1, 1, 0.5, 1), f.occlusion_label, false, font);
    }
  }
  c.finish();
}

}  // namespace tailor
