#include "report/html_report.hpp"

#include <cmath>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "inspect/render.hpp"
#include "report/assets.hpp"
#include "sweep/run_data.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

using json = nlohmann::json;

// Inside <script>, "</" could close the element. In JSON text "</" only occurs in strings, where
// "<\/" means the same.
std::string json_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if (s[i] == '<' && i + 1 < s.size() && s[i + 1] == '/') out += '\\';
  }
  return out;
}

// Library code: only "</script" would end the element ("<\/script" means the same inside a
// string or regex); a blanket "</" rewrite would break regex literals such as /</g.
std::string js_safe(std::string_view s) {
  std::string out(s);
  for (size_t p = 0; (p = out.find("</script", p)) != std::string::npos; p += 2) out.insert(p + 1, 1, '\\');
  return out;
}

}  // namespace

// The Markdown results table as an HTML table.
std::string table_html(const std::string& md) {
  std::istringstream in(md);
  std::string line, out = "<table>\n";
  int n = 0;
  while (std::getline(in, line)) {
    if (line.rfind("|---", 0) == 0) continue;
    const char* cell = n++ == 0 ? "th" : "td";
    out += "<tr>";
    size_t a = 1;
    for (size_t b; (b = line.find(" |", a)) != std::string::npos; a = b + 2) {
      std::string v = line.substr(a, b - a);
      if (!v.empty() && v[0] == ' ') v.erase(0, 1);
      out += fmt::format("<{0}>{1}</{0}>", cell, html_escape(v));
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

namespace {

json curve_spec(const std::string& field, const std::string& title, const std::string& axis) {
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"title", title},
          {"width", 380},
          {"height", 240},
          {"data", {{"name", "curves"}}},
          {"params", json::array({{{"name", "pick"}, {"select", {{"type", "point"}, {"fields", {"run"}}}}, {"bind", "legend"}}})},
          {"mark", {{"type", "line"}, {"point", true}}},
          {"encoding",
           {{"x", {{"field", "epoch"}, {"type", "quantitative"}, {"title", "epoch"}, {"axis", {{"tickMinStep", 1}}}}},
            {"y", {{"field", field}, {"type", "quantitative"}, {"title", axis}, {"scale", {{"zero", false}}}}},
            {"color", {{"field", "run"}, {"type", "nominal"}, {"title", "run (click to pick)"}}},
            {"opacity", {{"condition", {{"param", "pick"}, {"value", 1}}}, {"value", 0.12}}},
            {"tooltip", json::array({{{"field", "run"}},
                                     {{"field", "epoch"}},
                                     {{"field", field}, {"format", ".4~f"}, {"title", axis}}})}}}};
}

}  // namespace

void write_html_report(const std::string& dir, const std::string& table_md) {
  json curves = json::array(), points = json::array();
  for (const TrialRecord& t : read_trials(dir)) {
    if (!t.finished) continue;
    const std::string run = t.label();
    for (const EpochRow& e : read_metrics(t.dir + "/metrics.csv")) {
      json row{{"run", run}, {"epoch", e.epoch}, {"train_loss", e.train_loss}, {"test_acc", e.test_acc}};
      if (!std::isnan(e.val_acc)) row["val_acc"] = e.val_acc;
      curves.push_back(row);
    }
    points.push_back({{"run", run},
                      {"model", t.summary.at("model").value("family", std::string("?"))},
                      {"weights", t.summary.value("weights", 0)},
                      {"test_acc", t.summary.value("test_acc", 0.0)}});
  }
  json specs = json::array({curve_spec("train_loss", "Training loss", "training loss"),
                            curve_spec("val_acc", "Validation accuracy", "validation accuracy (%)"),
                            curve_spec("test_acc", "Test accuracy", "test accuracy (%)")});
  specs.push_back({{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
                   {"title", "Test accuracy against weight count"},
                   {"width", 380},
                   {"height", 240},
                   {"data", {{"name", "points"}}},
                   {"mark", {{"type", "point"}, {"filled", true}, {"size", 80}}},
                   {"encoding",
                    {{"x", {{"field", "weights"}, {"type", "quantitative"}, {"title", "weights"}, {"scale", {{"type", "log"}}}}},
                     {"y", {{"field", "test_acc"}, {"type", "quantitative"}, {"title", "test accuracy (%)"}, {"scale", {{"zero", false}}}}},
                     {"color", {{"field", "model"}, {"type", "nominal"}, {"title", "family"}}},
                     {"shape", {{"field", "model"}, {"type", "nominal"}}},
                     {"tooltip", json::array({{{"field", "run"}}, {{"field", "weights"}}, {{"field", "test_acc"}, {"format", ".2f"}}})}}}});
  const std::string name = sweep_name(dir);
  write_vega_page(dir + "/report.html", "tailor report: " + name,
                  fmt::format("<p>{} finished runs. Hover a line for its values; click a legend entry to pick runs "
                              "(shift-click for several).</p>\n",
                              points.size()),
                  specs, json{{"curves", curves}, {"points", points}}, "<h2>Results</h2>\n" + table_html(table_md));
}

void write_vega_page(const std::string& path, const std::string& title, const std::string& head_html,
                     const nlohmann::json& specs, const nlohmann::json& data, const std::string& tail_html) {
  const WebAssets js = web_assets();
  if (js.vega.empty())
    throw Error("this tailor was built without the web assets for report.html (run scripts/setup.sh, then make)");
  std::string html = fmt::format(R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{0}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 24px; }}
table {{ border-collapse: collapse; margin-top: 16px; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head><body>
<h1>{0}</h1>
{1}<div class="charts" id="charts"></div>
{2}
)",
                                 html_escape(title), head_html, tail_html);
  html += "<script>" + js_safe(js.vega) + "</script>\n";
  html += "<script>" + js_safe(js.vega_lite) + "</script>\n";
  html += "<script>" + js_safe(js.vega_embed) + "</script>\n";
  html += "<script>\nconst DATA = " + json_safe(data.dump()) + ";\n";
  html += "const SPECS = " + json_safe(specs.dump()) + ";\n";
  html += R"(for (const [i, spec] of SPECS.entries()) {
  const div = document.createElement('div');
  div.className = 'chart';
  div.id = 'chart' + i;
  document.getElementById('charts').appendChild(div);
  spec.data = { values: DATA[spec.data.name] };
  vegaEmbed(div, spec, { actions: false, renderer: 'svg' })
    .then(() => div.setAttribute('data-rendered', 'true'))
    .catch(err => console.error('chart ' + i + ': ' + err));
}
</script>
</body></html>
)";
  write_file_atomic(path, html);
}


}  // namespace tailor
