#pragma once
// The files the web app is made of: its page, script and style (web/app/) and Vega, Vega-Lite
// and vega-embed (web/node_modules), all built into the binary, so `tailor serve` needs nothing
// on disk or from the network.
#include <optional>
#include <string>
#include <string_view>

namespace tailor::serve {

struct StaticFile {
  std::string_view content;
  const char* mime;
};

// The built-in file called `name` ("index.html", "app.js", "vega.min.js", ...), if there is one.
std::optional<StaticFile> builtin_file(std::string_view name);

// Reads `name` from the folder `dir` (for front-end development). Only a plain file name
// (letters, digits, '.', '-', '_'; no leading dot) whose resolved path stays inside `dir` is
// served: anything else, or a missing file, gives nothing.
std::optional<std::string> file_in_dir(const std::string& dir, std::string_view name);

// Content type by extension (.html, .js, .css, .png, .json; otherwise octet-stream).
const char* mime_type(std::string_view name);

}  // namespace tailor::serve
