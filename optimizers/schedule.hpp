// Learning-rate schedules, evaluated per optimizer step within a training phase.
//   constant:       lr
//   warmup_cosine:  linear from 0 to lr over `warmup` steps, then cosine from lr down
//                   to min_lr at the phase's last step.
#pragma once

#include <cstdint>
#include <string>

#include "framework/config.hpp"

namespace strata {

struct LrSchedule {
  enum class Kind { constant, warmup_cosine } kind = Kind::constant;
  double lr = 1e-3;
  std::int64_t warmup = 0;
  double min_lr = 0;

  // lr for step `step` (0-based) of `total` steps.
  double at(std::int64_t step, std::int64_t total) const;
};

// Reads `schedule: {type: constant|warmup_cosine, warmup: N, min_lr: x}` from a
// mapping that may also hold `lr:`; `default_lr` applies when `lr` is absent.
LrSchedule parse_schedule(const ConfigNode& schedule, double lr, const std::string& context);

}  // namespace strata
