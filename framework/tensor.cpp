#include "framework/tensor.hpp"

#include <atomic>

namespace strata {

namespace {
std::atomic<std::size_t> release_threshold{std::size_t(4) << 20};
}  // namespace

std::size_t release_threshold_bytes() { return release_threshold.load(std::memory_order_relaxed); }
ScopedReleaseThreshold::ScopedReleaseThreshold(std::size_t bytes)
    : previous_(release_threshold.exchange(bytes)) {}
ScopedReleaseThreshold::~ScopedReleaseThreshold() { release_threshold.store(previous_); }

std::string to_string(const Shape& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i] == kAnyDim ? "*" : std::to_string(shape[i]);
  }
  return out + ")";
}

}  // namespace strata
