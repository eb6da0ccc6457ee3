#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace tailor {

// Writes SWEEP_DIR/report.html: one self-contained page (Vega, Vega-Lite and vega-embed inlined,
// works offline from file://) with interactive charts of every finished trial — training loss,
// validation and test accuracy against epoch, runs overlaid, hover for values, click the legend
// to pick runs — test accuracy against weight count per family, and the results table (`table_md`).
// Throws tailor::Error when the binary was built without the web assets.
void write_html_report(const std::string& sweep_dir, const std::string& table_md);

// One such page at `path`: `title`, `head_html` above the charts, `tail_html` below; each of
// `specs` is a Vega-Lite spec whose "data": {"name": K} is drawn from data[K] (a list of rows).
// Throws tailor::Error when the binary was built without the web assets.
void write_vega_page(const std::string& path, const std::string& title, const std::string& head_html,
                     const nlohmann::json& specs, const nlohmann::json& data, const std::string& tail_html);

// A Markdown table (as write_results_table makes) as an HTML table (html_escape: inspect/render.hpp).
std::string table_html(const std::string& md);

}  // namespace tailor
