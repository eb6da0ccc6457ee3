#pragma once
#include <string>

namespace tailor {

// Writes SWEEP_DIR/report.html: one self-contained page (Vega, Vega-Lite and vega-embed inlined,
// works offline from file://) with interactive charts of every finished trial — training loss,
// validation and test accuracy against epoch, runs overlaid, hover for values, click the legend
// to pick runs — test accuracy against weight count per family, and the results table (`table_md`).
// Throws tailor::Error when the binary was built without the web assets.
void write_html_report(const std::string& sweep_dir, const std::string& table_md);

}  // namespace tailor
