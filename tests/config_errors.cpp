// Every kind of config error, from a YAML string: each must be a ConfigError that
// points at the offending line:column of "test.yaml" and names what is wrong.
// Model configs use only Linear (the first layer sees token ids (batch, seq), so a
// Linear first fails by itself; errors caught before the factory runs are unaffected).
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>

#include "framework/model.hpp"
#include "optimizers/optimizer.hpp"
#include "optimizers/schedule.hpp"

using namespace strata;

namespace {

void build_model_from(const std::string& yaml) {
  const ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
  Rng rng(1);
  build_model<double>(root.get("model"), 16, rng);
}

void build_optimizer_from(const std::string& yaml) {
  const ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
  make_optimizer<double>(root.get("optimizer"));
}

// `position` is "line:col" (or "line:", or "" for anywhere); every fragment must appear
// in what().
void expect_config_error(const std::function<void()>& build, const std::string& position,
                         const std::vector<std::string>& fragments) {
  try {
    build();
    BOOST_ERROR("no ConfigError; expected one at test.yaml:" << position);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    // A position ending in ':' ("1:") fixes the line only.
    const bool line_only = position.empty() || position.back() == ':';
    BOOST_TEST(what.rfind("test.yaml:" + position + (line_only ? "" : ": "), 0) == 0, what);
    for (const auto& fragment : fragments)
      BOOST_TEST(what.find(fragment) != std::string::npos,
                 "missing <" << fragment << "> in " << what);
  }
}

void expect_model_error(const std::string& yaml, const std::string& position,
                        const std::vector<std::string>& fragments) {
  expect_config_error([&] { build_model_from(yaml); }, position, fragments);
}

void expect_optimizer_error(const std::string& yaml, const std::string& position,
                            const std::vector<std::string>& fragments) {
  expect_config_error([&] { build_optimizer_from(yaml); }, position, fragments);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_errors)

BOOST_AUTO_TEST_CASE(malformed_yaml) {
  // yaml-cpp reports where it noticed the flow list was never closed: the next key.
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers: [{type: Linear, out: 4}\n"
      "optimizer: {type: Adam}\n",
      "4:1", {"malformed YAML", "end of sequence flow not found"});
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers: - x: : y\n",
      "3:11", {"malformed YAML"});
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void expect_parse_error(const std::string& yaml, const std::string& position,
                        const std::vector<std::string>& fragments) {
  expect_config_error([&] { ConfigNode::parse(yaml, "test.yaml"); }, position, fragments);
}

// yaml-cpp has no limits of its own: each of these crashed, hung, or said something
// unrelated before config.cpp checked the text and its parse events.
BOOST_AUTO_TEST_CASE(alias_cycles_are_refused) {
  expect_parse_error("a: &a [*a]\n", "1:8", {"alias *a", "contains it (a cycle)"});
  expect_parse_error("x: 1\nb: &loop\n  k: [1, {z: *loop}]\n", "3:14", {"alias *loop"});
  // An alias of a finished node is fine, and reads as that node.
  const ConfigNode ok = ConfigNode::parse("a: &v [1, 2]\nb: *v\n", "test.yaml");
  BOOST_TEST(ok.get("b").size() == 2u);
  BOOST_TEST(ok.get("b")[1].scalar() == "2");
}

BOOST_AUTO_TEST_CASE(alias_bombs_are_refused_quickly) {
  // "Billion laughs": each level repeats the previous one 9 times, 9^9 values in all.
  std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b', previous = 'a'; level <= 'i'; previous = level++) {
    yaml += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) yaml += std::string(i ? ", *" : "*") + previous;
    yaml += "]\n";
  }
  const auto start = std::chrono::steady_clock::now();
  expect_parse_error(yaml, "6:8", {"aliases expand the config past 100000 values", "*e"});
  BOOST_TEST(seconds_since(start) < 1.0);
}

BOOST_AUTO_TEST_CASE(nul_bytes_are_refused_at_their_position) {
  expect_parse_error(std::string("seed: 1\nmodel: {a\0: 1}\n", 22), "2:10", {"NUL byte"});
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused) {
  // Flow: 100000 unclosed and closed brackets; block: ever deeper indentation.
  expect_parse_error("a: " + std::string(100000, '['), "1:", {"nested deeper than 64 levels"});
  expect_parse_error("a: " + std::string(100000, '[') + std::string(100000, ']'), "1:67",
                     {"nested deeper than 64 levels"});
  std::string block;
  for (int i = 0; i < 3000; ++i) block += std::string(std::size_t(i), ' ') + "k:\n";
  expect_parse_error(block, "65:65", {"nested deeper than 64 levels"});
  std::string fine = "a: " + std::string(60, '[') + std::string(60, ']');
  BOOST_TEST(ConfigNode::parse(fine, "test.yaml").get("a").is_sequence());
}

BOOST_AUTO_TEST_CASE(oversized_configs_stop_at_the_limit) {
  // 16 MiB of a valid mapping: refused where the limit is passed, not parsed.
  std::string big;
  while (big.size() <= kMaxConfigBytes)
    big.append("k").append(std::to_string(big.size())).append(": 1\n");
  expect_parse_error(big, "", {"config larger than 16 MiB (16777216 bytes)"});
  // An endless file: reading stops one byte past the limit.
  const auto start = std::chrono::steady_clock::now();
  try {
    read_config_file("/dev/zero");
    BOOST_ERROR("/dev/zero was read as a config");
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()) ==
               "/dev/zero:1:16777217: config file larger than 16 MiB (16777216 bytes): "
               "stopped reading here");
  }
  BOOST_TEST(seconds_since(start) < 1.0);
}

BOOST_AUTO_TEST_CASE(duplicate_key) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, out: 4}\n"
      "  max_seq_len: 9\n",
      "5:3", {"duplicate key \"max_seq_len\""});
}

BOOST_AUTO_TEST_CASE(unknown_key_with_suggestion) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, otu: 4}\n",
      "4:22", {"model.layers[0] (Linear)", "unknown key \"otu\"", "did you mean \"out\""});
}

BOOST_AUTO_TEST_CASE(unknown_model_key_with_suggestion) {
  expect_model_error(
      "model:\n"
      "  max_seq_lne: 8\n"
      "  layers:\n"
      "    - {type: Linear, out: 4}\n",
      "2:3", {"model:", "unknown key \"max_seq_lne\"", "did you mean \"max_seq_len\""});
}

BOOST_AUTO_TEST_CASE(wrong_type) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - type: Linear\n"
      "      out: \"abc\"\n",
      "5:12", {"(Linear \"linear\")", "\"out\" must be an integer", "\"abc\""});
}

BOOST_AUTO_TEST_CASE(missing_required_key) {
  // Reported at the layer's mapping: the key is not there to point at.
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, bias: false}\n",
      "4:7", {"(Linear \"linear\")", "missing required key \"out\""});
  expect_model_error(
      "model:\n"
      "  layers:\n"
      "    - {type: Linear, out: 4}\n",
      "2:3", {"model:", "missing required key \"max_seq_len\""});
}

BOOST_AUTO_TEST_CASE(out_of_range_value) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, out: 0}\n",
      "4:27", {"(Linear \"linear\")", "\"out\" must be in [1, 65536], got 0"});
  expect_model_error(
      "model:\n"
      "  max_seq_len: -3\n"
      "  layers:\n"
      "    - {type: Linear, out: 4}\n",
      "2:16", {"\"max_seq_len\" must be in [1,", "got -3"});
}

BOOST_AUTO_TEST_CASE(first_linear_needs_known_feature_size) {
  // Token ids (batch, seq) have no feature axis: Linear cannot infer its input size.
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, out: 4}\n",
      "4:27", {"(Linear \"linear\")", "needs an input with a known feature size", "(*, *)"});
}

BOOST_AUTO_TEST_CASE(shapes_that_do_not_chain) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  vocab_size: 10\n"
      "  layers:\n"
      "    - {type: Embedding, dim: 8}\n"
      "    - {type: TransformerBlock, name: blocks, dim: 16, hidden: 32}\n",
      "6:51", {"(TransformerBlock \"blocks\")", "shapes do not chain", "16", "8"});
}

BOOST_AUTO_TEST_CASE(unknown_layer_type_with_suggestion) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linaer, out: 4}\n",
      "4:14",
      {"model.layers[0]", "unknown layer type \"Linaer\"", "did you mean \"Linear\"",
       "known types:"});
}

BOOST_AUTO_TEST_CASE(unknown_optimizer_type_with_suggestion) {
  expect_optimizer_error(
      "optimizer:\n"
      "  type: Adma\n"
      "  lr: 1.0e-3\n",
      "2:9", {"optimizer:", "unknown optimizer type \"Adma\"", "did you mean \"Adam\"", "SGD"});
}

BOOST_AUTO_TEST_CASE(epsilons_must_be_positive) {
  // eps: 0 passed `check` (Adam: 0/0 on a parameter whose gradient is still 0), or
  // failed later without a position (TransformerBlock's LayerNorms).
  expect_optimizer_error("optimizer: {type: Adam, eps: 0}\n", "1:30",
                         {"optimizer (Adam)", "\"eps\" must be > 0, got 0"});
  expect_optimizer_error("optimizer: {type: AdamW, eps: 0.0}\n", "1:31", {"\"eps\" must be > 0"});
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: TransformerBlock, dim: 4, hidden: 8, eps: 0}\n",
      "4:56", {"(TransformerBlock", "\"eps\" must be in (0, 1], got 0"});
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: LayerNorm, eps: 0}\n",
      "4:30", {"(LayerNorm", "\"eps\" must be > 0, got 0"});
  make_optimizer<double>(ConfigNode::parse("{type: Adam, eps: 1e-30}", "test.yaml"));
}

BOOST_AUTO_TEST_CASE(optimizer_key_errors) {
  expect_optimizer_error("optimizer: {type: Adam, lr: 1.0e-3, bettas: [0.9, 0.99]}\n", "1:37",
                         {"optimizer (Adam)", "unknown key \"bettas\"", "did you mean \"betas\""});
  expect_optimizer_error("optimizer: {type: SGD, lr: fast}\n", "1:28",
                         {"optimizer (SGD)", "\"lr\" must be a number", "\"fast\""});
  expect_optimizer_error("optimizer: {type: Adam, clip_norm: -1}\n", "1:36",
                         {"optimizer (Adam)", "\"clip_norm\" must be >= 0", "got -1"});
  // A list element out of range is reported at the element.
  expect_optimizer_error("optimizer: {type: Adam, betas: [0.9, 1.5]}\n", "1:38",
                         {"optimizer (Adam)", "\"betas\" must be in [0, 1], got 1.5"});
  expect_optimizer_error("optimizer: {type: Adam, betas: [0.9, 1]}\n", "1:32",
                         {"optimizer (Adam)", "\"betas\" must each be < 1"});
  expect_optimizer_error("optimizer: {type: SGD, nesterov: true}\n", "1:34",
                         {"optimizer (SGD)", "\"nesterov\" needs \"momentum\" > 0"});
  expect_optimizer_error("optimizer: {lr: 1.0e-3}\n", "1:12",
                         {"optimizer:", "missing required key \"type\"", "AdamW"});
}

BOOST_AUTO_TEST_CASE(invalid_choice) {
  expect_model_error(
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Linear, out: 4, init: hee}\n",
      "4:36",
      {"(Linear \"linear\")", "\"init\" must be one of he, xavier, zeros", "\"hee\"",
       "did you mean \"he\""});
}

BOOST_AUTO_TEST_CASE(schedule_errors) {
  auto parse = [](const std::string& yaml) {
    return [yaml] {
      parse_schedule(ConfigNode::parse(yaml, "test.yaml").get("schedule"), 1e-3,
                     "training.phases[0].schedule");
    };
  };
  expect_config_error(
      parse("schedule: {type: warmup_cosin, warmup: 10}\n"), "1:18",
      {"training.phases[0].schedule", "\"type\" must be one of", "did you mean \"warmup_cosine\""});
  expect_config_error(parse("schedule: {type: warmup_cosine, warmup: -1}\n"), "1:41",
                      {"\"warmup\" must be in [0,", "got -1"});
  expect_config_error(parse("schedule: {type: constant, warmup: 5}\n"), "1:36",
                      {"\"warmup\" applies only to type: warmup_cosine"});
  expect_config_error(parse("schedule: {type: warmup_cosine, min_lr: 0.1}\n"), "1:41",
                      {"\"min_lr\"", "must not exceed the learning rate"});
}

BOOST_AUTO_TEST_SUITE_END()
