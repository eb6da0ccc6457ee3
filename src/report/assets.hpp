#pragma once
// The front-end libraries report.html inlines, built into the binary from web/node_modules (npm
// vega, vega-lite, vega-embed) so a report works offline from file:// and nothing is fetched.
#include <string_view>

namespace tailor {

struct WebAssets {
  std::string_view vega, vega_lite, vega_embed;
};
// Empty views when tailor was built without web/node_modules (scripts/setup.sh installs it).
WebAssets web_assets();

}  // namespace tailor
