#include "train/progress.hpp"

#include <algorithm>
#include <cstdio>
#include <unistd.h>

namespace tailor {

Progress::Progress(const std::string& mode, int64_t epochs, int64_t batches)
    : epochs_(epochs), batches_(batches) {
  bar_ = mode == "bar" || (mode == "auto" && isatty(fileno(stderr)));
  quiet_ = mode == "none";
}

void Progress::batch(int64_t epoch, int64_t done, double mean_loss, double acc) {
  if (!bar_) return;
  auto now = std::chrono::steady_clock::now();
  if (done != batches_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int kWidth = 30;
  const int fill = static_cast<int>(kWidth * done / std::max<int64_t>(batches_, 1));
  char bar[kWidth + 1];  // on the stack: this runs inside the training loop
  for (int i = 0; i < kWidth; ++i) bar[i] = i < fill ? '#' : '.';
  bar[kWidth] = '\0';
  std::fprintf(stderr, "\repoch %lld/%lld [%s] %3lld%%  loss %.4f  acc %.2f%%", static_cast<long long>(epoch),
               static_cast<long long>(epochs_), bar, static_cast<long long>(100 * done / std::max<int64_t>(batches_, 1)),
               mean_loss, acc);
  std::fflush(stderr);
}

void Progress::epoch(const std::string& line) {
  if (quiet_) return;
  if (bar_) std::fprintf(stderr, "\r\033[K");
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace tailor
