#include "optim/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "util/error.hpp"
#include "util/names.hpp"

namespace tailor {

namespace {
constexpr NameTable<ScheduleKind> kScheduleNames[] = {{"constant", ScheduleKind::constant},
                                                      {"step", ScheduleKind::step},
                                                      {"cosine", ScheduleKind::cosine},
                                                      {"onecycle", ScheduleKind::onecycle}};
}  // namespace

ScheduleKind parse_schedule(const std::string& name) { return parse_name(kScheduleNames, name, "--schedule"); }
std::string schedule_name(ScheduleKind k) { return name_of(kScheduleNames, k); }
std::vector<std::string> schedule_names() { return names_of(kScheduleNames); }

float lr_at(const ScheduleConfig& c, float base, int64_t t, int64_t total, int64_t per_epoch) {
  const double pi = 3.14159265358979323846;
  total = std::max<int64_t>(total, 1);
  const double frac = std::clamp(static_cast<double>(t) / static_cast<double>(total), 0.0, 1.0);
  switch (c.kind) {
    case ScheduleKind::constant: return base;
    case ScheduleKind::step: {
      const int64_t epochs = std::max<int64_t>(1, total / std::max<int64_t>(per_epoch, 1));
      const int64_t every = c.step_epochs > 0 ? c.step_epochs : std::max<int64_t>(1, epochs / 3);
      const int64_t epoch = t / std::max<int64_t>(per_epoch, 1);
      return static_cast<float>(base * std::pow(static_cast<double>(c.gamma), static_cast<double>(epoch / every)));
    }
    case ScheduleKind::cosine: return static_cast<float>(base * 0.5 * (1.0 + std::cos(pi * frac)));
    case ScheduleKind::onecycle: {
      const double start = base / 25.0, end = base / 1e4, w = std::max(1e-9, static_cast<double>(c.warmup));
      if (frac < w) return static_cast<float>(start + (base - start) * 0.5 * (1.0 - std::cos(pi * frac / w)));
      const double f = (frac - w) / std::max(1e-9, 1.0 - w);
      return static_cast<float>(end + (base - end) * 0.5 * (1.0 + std::cos(pi * f)));
    }
  }
  return base;
}

}  // namespace tailor
