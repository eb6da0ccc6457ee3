#include "serve/static_files.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "report/assets.hpp"

namespace tailor::serve {

const char* mime_type(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

std::optional<StaticFile> builtin_file(std::string_view name) {
  const WebAssets web = web_assets();
  std::string_view content;
  if (name == "vega.min.js") content = web.vega;
  else if (name == "vega-lite.min.js") content = web.vega_lite;
  else if (name == "vega-embed.min.js") content = web.vega_embed;
  else if (name == "index.html") content = web.app_html;
  else if (name == "app.js") content = web.app_js;
  else if (name == "app.css") content = web.app_css;
  if (content.empty()) return std::nullopt;
  return StaticFile{content, mime_type(name)};
}

std::optional<std::string> file_in_dir(const std::string& dir, std::string_view name) {
  namespace fs = std::filesystem;
  if (name.empty() || name.size() > 255 || name.front() == '.') return std::nullopt;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return std::nullopt;
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return std::nullopt;
  // A symbolic link inside the folder could still point out of it: compare resolved paths.
  const fs::path file = fs::canonical(root / std::string(name), ec);
  if (ec || file.parent_path() != root || !fs::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace tailor::serve
