#pragma once
// One PNG file drawn with PLplot (Debian libplplot-dev, cairo PNG driver) on a stream of its own.
// The drawing goes to PATH.tmp and finish() renames it to PATH; a figure abandoned on the way (an
// exception) leaves no file behind. Shared by the sweep figures and `tailor inspect`.
// PLplot has one current stream per process, so one PngStream draws at a time: each holds a lock
// for its life (trainings in several threads draw their curves in turn).
#include <mutex>
#include <string>

#include <plplot/plplot.h>

namespace tailor {

class PngStream {
 public:
  // A page of width x height pixels with colour map 0 set to `colours` entries of (r, g, b).
  // Throws tailor::Error when PATH.tmp cannot be written (PLplot itself would exit the process).
  PngStream(const std::string& path, int width, int height, const PLINT* r, const PLINT* g, const PLINT* b,
            int colours);
  PngStream(const PngStream&) = delete;
  PngStream& operator=(const PngStream&) = delete;
  ~PngStream();
  // Ends the stream and renames PATH.tmp to PATH.
  void finish();

 private:
  std::unique_lock<std::mutex> hold_;
  std::string path_;
  PLINT stream_ = 0;
  bool done_ = false;
};

}  // namespace tailor
