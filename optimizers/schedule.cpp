#include "optimizers/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

namespace strata {

double LrSchedule::at(std::int64_t step, std::int64_t total) const {
  if (kind == Kind::constant) return lr;
  if (step < warmup) return lr * double(step) / double(warmup);  // step 0 -> 0
  // Cosine over steps [warmup, total - 1]: lr at the end of warmup, min_lr at the
  // last step. A warmup that fills the phase leaves nothing to decay.
  const std::int64_t decay_steps = total - 1 - warmup;
  if (decay_steps <= 0) return lr;
  const double progress = std::min(1.0, double(step - warmup) / double(decay_steps));
  return min_lr + (lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

LrSchedule parse_schedule(const ConfigNode& schedule, double lr, const std::string& context) {
  LrSchedule out;
  out.lr = lr;
  if (!schedule.valid() || schedule.is_null()) return out;  // no schedule: constant
  static const Schema schema = {
      string_key("type", "constant", "constant, or linear warmup then cosine decay",
                 {"constant", "warmup_cosine"}),
      integer_key("warmup", "0", "steps of linear warmup from 0 to lr (warmup_cosine)", 0, 1e12),
      number_key("min_lr", "0", "lr reached at the phase's last step (warmup_cosine)", 0),
  };
  const ConfigSection section(schedule, context, schema);
  if (section.string("type") == "constant") {
    // Refuse keys that would silently do nothing.
    for (const char* key : {"warmup", "min_lr"})
      if (section.has(key))
        section.fail(key, "\"" + std::string(key) + "\" applies only to type: warmup_cosine");
    return out;
  }
  out.kind = LrSchedule::Kind::warmup_cosine;
  out.warmup = section.integer("warmup");
  out.min_lr = section.number("min_lr");
  if (out.min_lr > lr) {
    std::ostringstream text;
    text << "\"min_lr\" (" << out.min_lr << ") must not exceed the learning rate (" << lr << ")";
    section.fail("min_lr", text.str());
  }
  return out;
}

}  // namespace strata
