// Learning-rate schedules, evaluated per optimizer step within a training phase.
//   constant:       lr
//   warmup_cosine:  linear from 0 to lr over `warmup` steps, then cosine from lr down
//                   to min_lr at the phase's last step.
#pragma once

#include <cstdint>
#include <string>

#include "framework/config.hpp"

namespace strata {

// The learning rate when neither a phase's `lr:` nor the optimizer's gives one: the
// default of every optimizer's `lr` key, which the run config falls back on as well.
inline constexpr double kDefaultLearningRate = 1e-3;

struct LrSchedule {
  enum class Kind { constant, warmup_cosine } kind = Kind::constant;
  double lr = kDefaultLearningRate;
  std::int64_t warmup = 0;
  double min_lr = 0;

  // lr for step `step` (0-based) of `total` steps.
  double at(std::int64_t step, std::int64_t total) const;
};

// Reads a `schedule:` mapping {type: constant|warmup_cosine, warmup: N, min_lr: x}
// (validated; errors name `context`) for peak learning rate `lr` (the phase's `lr:`,
// or the optimizer's default). A missing or null node gives a constant schedule.
LrSchedule parse_schedule(const ConfigNode& schedule, double lr, const std::string& context);

}  // namespace strata
