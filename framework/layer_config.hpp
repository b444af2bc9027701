// What a layer factory receives: its validated YAML section plus the model-wide
// context (input shape, vocabulary size, maximum sequence length, the run's Rng, and
// access to parameters of layers built before it, for weight tying).
#pragma once

#include <functional>
#include <string>

#include "framework/config.hpp"
#include "framework/parameter.hpp"
#include "framework/rng.hpp"
#include "framework/tensor.hpp"

namespace strata {

struct ModelContext {
  std::int64_t vocab_size = 0;   // from the tokenizer (or `vocab_size:` in the config)
  std::int64_t max_seq_len = 0;  // `model.max_seq_len`
};

template <class T>
class LayerConfig : public ConfigSection {
 public:
  using ParameterLookup = std::function<Parameter<T>*(const std::string&)>;

  LayerConfig(ConfigSection section, std::string name, Shape input_shape, ModelContext context,
              Rng& rng, ParameterLookup lookup = {})
      : ConfigSection(std::move(section)),
        name_(std::move(name)),
        input_shape_(std::move(input_shape)),
        context_(context),
        rng_(&rng),
        lookup_(std::move(lookup)) {}

  const std::string& name() const { return name_; }  // hierarchical prefix, "blocks.1"
  const Shape& input_shape() const { return input_shape_; }
  const ModelContext& model() const { return context_; }
  Rng& rng() const { return *rng_; }
  // A parameter of an earlier layer by full name, or nullptr.
  Parameter<T>* find_parameter(const std::string& full_name) const {
    return lookup_ ? lookup_(full_name) : nullptr;
  }
  // The size of the input's feature (last) axis; fails at `key` if it is unknown.
  std::int64_t input_features(std::string_view key) const {
    if (input_shape_.empty() || input_shape_.back() == kAnyDim)
      fail(key, "needs an input with a known feature size, got " + to_string(input_shape_));
    return input_shape_.back();
  }
  // The integer at `key`, which must equal the input's feature size: where consecutive
  // layers do not chain, the error points at `key`.
  std::int64_t matching_features(std::string_view key) const {
    const std::int64_t value = integer(key);
    const std::int64_t features = input_features(key);
    if (features != value)
      fail(key, "shapes do not chain: " + std::string(key) + " is " + std::to_string(value) +
                    " but the input has " + std::to_string(features) + " features " +
                    to_string(input_shape_));
    return value;
  }

 private:
  std::string name_;
  Shape input_shape_;
  ModelContext context_;
  Rng* rng_;
  ParameterLookup lookup_;
};

}  // namespace strata
