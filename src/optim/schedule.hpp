#pragma once
// Learning-rate schedules, evaluated per optimizer step.
#include <cstdint>
#include <string>
#include <vector>

namespace tailor {

enum class ScheduleKind { constant, step, cosine, onecycle };
ScheduleKind parse_schedule(const std::string& name);  // throws tailor::Error
std::string schedule_name(ScheduleKind k);
std::vector<std::string> schedule_names();  // every name parse_schedule takes

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::cosine;  // anneals to 0 over the run: the best final accuracy for a fixed epoch budget
  int64_t step_epochs = 0;  // step: multiply by gamma every step_epochs (0: a third of the run)
  float gamma = 0.1f;
  float warmup = 0.3f;      // onecycle: share of steps spent rising from lr/25 to lr
};

//   constant: lr
//   step:     lr * gamma^floor(epoch / step_epochs)
//   cosine:   lr * (1 + cos(pi * t / T)) / 2                       (Loshchilov & Hutter 2017)
//   onecycle: cosine rise from lr/25 to lr over warmup*T, cosine fall to lr/1e4  (Smith 2018)
// t: steps taken so far, T: total steps, steps_per_epoch to know the epoch.
float lr_at(const ScheduleConfig& cfg, float base_lr, int64_t t, int64_t total, int64_t steps_per_epoch);

}  // namespace tailor
