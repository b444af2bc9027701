// Dropout (inverted): in Mode::train each element is zeroed with probability `rate`
// and the survivors are scaled by 1 / (1 - rate), so the expected output equals the
// input and Mode::eval is the identity (no rescaling at inference).
//
// Shapes: any rank, y has x's shape. No parameters.
// Cached: the mask of the last forward (0 or 1/(1-rate) per element; all ones in eval).
// Returns dx = dy * mask.
// Randomness: the layer owns `mask_rng_`, seeded by ONE 64-bit draw from the run's Rng
// at construction. Drawing masks from the shared Rng instead would make every other
// consumer's draws (shuffling, other dropout layers, sampling) depend on how many
// elements each dropout layer masked and in which order the layers run, so adding or
// resizing a layer would change unrelated randomness. With its own stream the run is
// still reproducible from the seed. reseed() restarts the stream, so tests and the
// gradient checker (GradCheckOptions::before_forward) can replay the same mask.
// Config: {type: Dropout, rate: 0.1}.
#pragma once

#include <cstdint>

#include "framework/layer.hpp"
#include "framework/layer_config.hpp"

namespace strata {

template <class T>
class Dropout : public Layer<T> {
 public:
  static constexpr const char* kSummary =
      "inverted dropout: zero elements with probability rate in training, identity in eval";
  static constexpr const char* kExample = "{rate: 0.25}";  // for the conformance checks
  static Shape example_input() { return {2, 3, 4}; }
  static Schema schema();
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config);
  // No parameters, the input's shape: the memory budget counts the layers after it.
  static std::uint64_t parameter_count(const LayerConfig<T>&) { return 0; }
  static Shape config_output_shape(const LayerConfig<T>& config) { return config.input_shape(); }

  Dropout(std::string name, double rate, Rng& rng);

  std::string_view type() const override { return "Dropout"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) override;
  const Tensor<T>& backward(const Tensor<T>& dy) override;
  Shape output_shape(const Shape& in) const override { return in; }

  void reseed(std::uint64_t seed) { mask_rng_ = Rng(seed); }
  double rate() const { return rate_; }

 private:
  double rate_;
  Rng mask_rng_;
  Tensor<T> mask_;
};

}  // namespace strata
