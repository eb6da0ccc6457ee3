// The text outputs of `tailor inspect`: the CSV tables and the HTML page that ties the figures
// and tables together.
#include "inspect/render.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "util/error.hpp"

namespace tailor {

// ---- Tables ----

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

namespace {
std::string confusion_table(const std::vector<int64_t>& counts, const std::vector<std::string>& classes, bool percent) {
  const size_t k = classes.size();
  if (counts.size() != k * k) throw Error("confusion matrix does not match the class count");
  std::string out = "true\\pred";
  for (const auto& name : classes) out += ',' + csv_field(name);
  out += '\n';
  for (size_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (size_t p = 0; p < k; ++p) row += counts[t * k + p];
    out += csv_field(classes[t]);
    for (size_t p = 0; p < k; ++p) {
      const int64_t n = counts[t * k + p];
      out += ',';
      out += percent ? fmt::format("{:.2f}", row ? 100.0 * static_cast<double>(n) / static_cast<double>(row) : 0.0) : std::to_string(n);
    }
    out += "\n";
  }
  return out;
}
}  // namespace

std::string confusion_csv(const std::vector<int64_t>& counts, const std::vector<std::string>& classes) {
  return confusion_table(counts, classes, false);
}

std::string confusion_normalised_csv(const std::vector<int64_t>& counts, const std::vector<std::string>& classes) {
  return confusion_table(counts, classes, true);
}

std::string per_class_csv(const std::vector<ClassStats>& stats, const std::vector<std::string>& classes) {
  if (stats.size() != classes.size()) throw Error("per-class figures do not match the class count");
  std::string out = "class,support,predicted,correct,precision,recall,f1\n";
  for (size_t i = 0; i < stats.size(); ++i) {
    const ClassStats& s = stats[i];
    out += fmt::format("{},{},{},{},{:.2f},{:.2f},{:.2f}\n", csv_field(classes[i]), s.support, s.predicted, s.correct,
                       s.precision, s.recall, s.f1);
  }
  return out;
}

ConfusedPair most_confused(const std::vector<int64_t>& counts, int64_t k) {
  ConfusedPair best;
  for (int64_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < k; ++p) row += counts[static_cast<size_t>(t * k + p)];
    for (int64_t p = 0; p < k; ++p) {
      const int64_t n = counts[static_cast<size_t>(t * k + p)];
      if (p != t && n > best.count)
        best = {static_cast<int>(t), static_cast<int>(p), n, row ? 100.0 * static_cast<double>(n) / static_cast<double>(row) : 0};
    }
  }
  return best;
}

// ---- The HTML page ----

std::string html_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

namespace {

constexpr const char* kStyle = R"(body{font:15px/1.45 system-ui,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.lead{font-size:16px}.note{color:#555}nav a{margin-right:14px}img{max-width:100%;height:auto;border:1px solid #eee}
table{border-collapse:collapse;margin:10px 0}th,td{padding:4px 8px;border:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td.name,th.name{text-align:left}
table.confusion td{min-width:44px;text-align:center}table.confusion td.diag{outline:2px solid #333;outline-offset:-2px}
figure{margin:14px 0 24px}figcaption{color:#333;margin-top:4px}
)";

std::string pct(double v) { return fmt::format("{:.2f}%", v); }

std::string confusion_html(const InspectPage& pg) {
  const size_t k = pg.classes.size();
  std::string out = "<table class=\"confusion\">\n<tr><th class=\"name\">true \\ predicted</th>";
  for (const auto& c : pg.classes) out += "<th>" + html_escape(c) + "</th>";
  out += "<th>images</th></tr>\n";
  for (size_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (size_t p = 0; p < k; ++p) row += pg.counts[t * k + p];
    out += "<tr><th class=\"name\">" + html_escape(pg.classes[t]) + "</th>";
    for (size_t p = 0; p < k; ++p) {
      const int64_t n = pg.counts[t * k + p];
      const double share = row ? 100.0 * static_cast<double>(n) / static_cast<double>(row) : 0;
      // Shade: dark blue with the square root of the row share as its opacity (as in the PNG, so
      // the small shares where the mistakes are show); white text on the darker cells.
      const double shade = std::sqrt(share / 100);
      out += fmt::format("<td{} style=\"background:rgba(8,48,107,{:.3f});color:{}\" title=\"{} as {}: {} ({:.1f}% of {})\">{}</td>",
                         t == p ? " class=\"diag\"" : "", shade, shade > 0.6 ? "#fff" : "#222",
                         html_escape(pg.classes[t]), html_escape(pg.classes[p]), n, share, html_escape(pg.classes[t]), n);
    }
    out += fmt::format("<td>{}</td></tr>\n", row);
  }
  return out + "</table>\n";
}

std::string per_class_html(const InspectPage& pg) {
  std::string out =
      "<table>\n<tr><th class=\"name\">class</th><th>images</th><th>predicted as it</th><th>correct</th>"
      "<th>precision</th><th>recall = accuracy on the class</th><th>F1</th></tr>\n";
  for (size_t i = 0; i < pg.stats.size(); ++i) {
    const ClassStats& s = pg.stats[i];
    out += fmt::format("<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       html_escape(pg.classes[i]), s.support, s.predicted, s.correct, pct(s.precision), pct(s.recall), pct(s.f1));
  }
  return out + "</table>\n";
}

std::string image_row(const InspectPage& pg, const ExplainedImage& e) {
  return fmt::format("<td>{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{:.1f}%</td>", e.index,
                     html_escape(pg.classes[static_cast<size_t>(e.truth)]), html_escape(pg.classes[static_cast<size_t>(e.pred)]),
                     100 * e.prob);
}

}  // namespace

std::string inspect_html(const InspectPage& pg) {
  const size_t k = pg.classes.size();
  int64_t total = 0, correct = 0;
  for (size_t t = 0; t < k; ++t)
    for (size_t p = 0; p < k; ++p) total += pg.counts[t * k + p], correct += t == p ? pg.counts[t * k + p] : 0;
  const double acc = total ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0;
  const ConfusedPair worst = most_confused(pg.counts, static_cast<int64_t>(k));
  auto has = [&](const std::string& f) { return std::find(pg.files.begin(), pg.files.end(), f) != pg.files.end(); };
  auto link = [&](const std::string& f) { return "<a href=\"" + html_escape(f) + "\">" + html_escape(f) + "</a>"; };

  std::string h = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>inspect: " +
                  html_escape(pg.run) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n";
  h += "<h1>Inspecting " + html_escape(pg.run) + "</h1>\n";
  h += fmt::format("<p class=\"lead\">Model: {} ({} weights). Test set: {} ({} images). <b>Test accuracy {}</b> ({} correct).",
                   html_escape(pg.model), pg.weights, html_escape(pg.data_dir), total, pct(acc), correct);
  if (worst.count > 0)
    h += fmt::format(" Most confused: <b>{}</b> predicted as <b>{}</b>, {} times ({:.1f}% of {}).",
                     html_escape(pg.classes[static_cast<size_t>(worst.truth)]), html_escape(pg.classes[static_cast<size_t>(worst.pred)]),
                     worst.count, worst.row_percent, html_escape(pg.classes[static_cast<size_t>(worst.truth)]));
  h += "</p>\n<nav><a href=\"#confusion\">Confusion matrix</a><a href=\"#per-class\">Per class</a>"
       "<a href=\"#mistakes\">Confident mistakes</a><a href=\"#saliency\">Saliency</a><a href=\"#files\">Files</a></nav>\n";

  h += "<h2 id=\"confusion\">Confusion matrix</h2>\n<p class=\"note\">Rows are the true classes, columns the predicted "
       "ones; each cell counts the test images of its row's class predicted as its column's. The shade is the cell's share of "
       "its row (square-root scale, so small shares show); the outlined diagonal holds the correct predictions.</p>\n";
  h += confusion_html(pg);
  if (has("confusion.png")) h += "<figure><img src=\"confusion.png\" alt=\"confusion matrix heat map\"></figure>\n";

  h += "<h2 id=\"per-class\">Per class</h2>\n<p class=\"note\">Precision: of the images predicted as the class, the share "
       "that are of it. Recall: of the class's images, the share predicted correctly, which is the accuracy on that class. "
       "F1: their harmonic mean.</p>\n";
  h += per_class_html(pg);

  h += fmt::format("<h2 id=\"mistakes\">The {} most confident mistakes</h2>\n", pg.mistakes.size());
  if (pg.mistakes.empty()) {
    h += "<p>No test image was misclassified.</p>\n";
  } else {
    h += "<p class=\"note\">Misclassified test images, the highest probability given to the wrong class first.</p>\n";
    if (has("mistakes.png")) h += "<figure><img src=\"mistakes.png\" alt=\"gallery of the most confident mistakes\"></figure>\n";
    h += "<details><summary>as a table</summary>\n<table>\n<tr><th>test image</th><th class=\"name\">true</th>"
         "<th class=\"name\">predicted</th><th>probability</th></tr>\n";
    for (const ExplainedImage& e : pg.mistakes) h += "<tr>" + image_row(pg, e) + "</tr>\n";
    h += "</table>\n</details>\n";
  }

  h += "<h2 id=\"saliency\">Saliency</h2>\n";
  h += fmt::format("<p class=\"note\">Why the model predicted what it did, for chosen test images. <b>Gradient saliency</b>: "
                   "the size of the gradient of the predicted class's score (its logit) with respect to each pixel, scaled so the "
                   "largest is 1: where a small change would move the score most. <b>Occlusion sensitivity</b>: how much the "
                   "predicted class's probability drops when a {0}&times;{0} black square (moved in steps of {1} pixels) covers "
                   "the pixel, scaled by the largest drop or rise: red pixels support the prediction, blue ones speak against "
                   "it. The black line is the outline of the object.</p>\n",
                   pg.patch, pg.stride);
  for (const ExplainedImage& e : pg.saliency) {
    h += "<figure><img src=\"" + html_escape(e.png) + "\" alt=\"saliency maps of test image " + std::to_string(e.index) + "\">";
    h += fmt::format("<figcaption>Test image {}: true <b>{}</b>, predicted <b>{}</b> ({:.1f}%){}.</figcaption></figure>\n",
                     e.index, html_escape(pg.classes[static_cast<size_t>(e.truth)]),
                     html_escape(pg.classes[static_cast<size_t>(e.pred)]), 100 * e.prob, e.truth == e.pred ? "" : ", a mistake");
  }

  h += "<h2 id=\"files\">Files</h2>\n<ul>\n";
  for (const std::string& f : pg.files) h += "<li>" + link(f) + "</li>\n";
  h += "</ul>\n</body>\n</html>\n";
  return h;
}

}  // namespace tailor
