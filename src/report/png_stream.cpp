#include "report/png_stream.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "util/error.hpp"

namespace tailor {

namespace {
// PLplot's own state (its current stream) is the process's: the one lock that guards it.
std::mutex& plplot_lock() {
  static std::mutex m;
  return m;
}
}  // namespace

PngStream::PngStream(const std::string& path, int width, int height, const PLINT* r, const PLINT* g, const PLINT* b,
                     int colours)
    : hold_(plplot_lock()), path_(path) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
  std::fclose(f);
  plmkstrm(&stream_);
  plsdev("pngcairo");
  plsfnam(tmp.c_str());
  plspage(0, 0, width, height, 0, 0);
  plscmap0(r, g, b, colours);
  plinit();
}

PngStream::~PngStream() {
  if (!done_) {
    plsstrm(stream_);
    plend1();
    std::remove((path_ + ".tmp").c_str());
  }
}

void PngStream::finish() {
  plsstrm(stream_);
  plend1();
  done_ = true;
  std::error_code ec;
  std::filesystem::rename(path_ + ".tmp", path_, ec);
  if (ec) throw Error("cannot write " + path_ + ": " + ec.message());
}

}  // namespace tailor
