#pragma once
// The front-end files built into the binary: the libraries report.html inlines, from
// web/node_modules (npm vega, vega-lite, vega-embed), so a report works offline from file://, and
// the page of `tailor serve` (web/app/). Nothing is fetched at run time.
#include <string_view>

namespace tailor {

struct WebAssets {
  std::string_view vega, vega_lite, vega_embed;
  std::string_view app_html, app_js, app_css;  // web/app/index.html, app.js, app.css
};
// Empty views when tailor was built without web/node_modules (scripts/setup.sh installs it).
WebAssets web_assets();

}  // namespace tailor
