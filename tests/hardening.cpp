// Hardening: the memory budget refuses a model before allocating it, every built-in
// layer's parameter_count() is exact, hostile checkpoint bytes (including what the
// fuzzers found) are refused with an Error, and a resume from an end-of-phase
// checkpoint continues the run's random stream. The end-to-end cases (the `strata`
// binary on bad inputs, divergence, kill -9 and resume) are in tests/cli/.
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "framework/files.hpp"
#include "framework/model.hpp"
#include "framework/npz.hpp"
#include "framework/registry.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "text/word_tokenizer.hpp"
#include "training/checkpoint.hpp"
#include "training/trainer.hpp"

using namespace strata;
using strata::testing::error_of;
using strata::testing::TempDir;

namespace {

// A test layer: one parameter of the input's width, and a parameter_count() that says
// whatever its `claim` key says, so the budget and the consistency check can be seen
// at work. `constructed` records whether the factory ran.
template <class T>
class Claims : public Layer<T> {
 public:
  static constexpr const char* kSummary = "test layer with a configurable parameter_count()";
  static inline bool constructed = false;
  static Schema schema() { return {integer_key("claim", kRequired, "claimed count", 0, 1e15)}; }
  static std::uint64_t parameter_count(const LayerConfig<T>& config) {
    return std::uint64_t(config.integer("claim"));
  }
  static std::unique_ptr<Layer<T>> from_config(const LayerConfig<T>& config) {
    constructed = true;
    return std::make_unique<Claims<T>>(config.name(), std::size_t(config.input_features("claim")));
  }
  Claims(std::string name, std::size_t dim)
      : Layer<T>(name), w_(join_name(name, "w"), xt::zeros<T>({dim})) {}
  std::string_view type() const override { return "TestClaims"; }
  const Tensor<T>& forward(const Tensor<T>& x, Mode) override { return out_ = x; }
  const Tensor<T>& backward(const Tensor<T>& dy) override { return grad_ = dy; }
  std::vector<Parameter<T>*> parameters() override { return {&w_}; }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  Parameter<T> w_;
  Tensor<T> out_, grad_;
};

void register_test_layers() {
  static const bool done = [] {
    layer_registry().add(make_layer_info<Claims>("TestClaims"));
    LayerInfo uncounted = make_layer_info<Claims>("TestUncounted");  // as a plugin without
    uncounted.count_float = nullptr;                                 // parameter_count()
    uncounted.count_double = nullptr;
    layer_registry().add(std::move(uncounted));
    return true;
  }();
  (void)done;
}

// Embedding dim 2 over 5 tokens and 4 positions: 18 parameters; then `layer`.
Model<float> build(const std::string& layer, const std::string& max_parameters = "0") {
  register_test_layers();
  const std::string yaml =
      "model:\n  max_seq_len: 4\n  vocab_size: 5\n  max_parameters: " + max_parameters +
      "\n  layers:\n    - {type: Embedding, dim: 2}\n    - " + layer + "\n";
  Rng rng(1);
  return build_model<float>(ConfigNode::parse(yaml, "test.yaml").get("model"), 0, rng);
}

struct EnvVar {  // sets a variable for one scope
  std::string name;
  EnvVar(std::string n, const char* value) : name(std::move(n)) {
    ::setenv(name.c_str(), value, 1);
  }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(hardening)

BOOST_AUTO_TEST_CASE(builtin_parameter_counts_are_exact) {
  // build_model compares every counted layer's parameter_count() with what it then
  // allocates and throws on a difference; these configs cover every option that
  // changes a count (biases, out_proj, tying, repeat).
  const std::vector<std::string> models = {
      "    - {type: Linear, out: 3}\n    - {type: Linear, out: 4, bias: false}\n"
      "    - {type: LayerNorm}\n    - {type: OutputProjection}\n",
      "    - {type: SelfAttention, dim: 4, heads: 2}\n"
      "    - {type: SelfAttention, dim: 4, bias: true}\n"
      "    - {type: SelfAttention, dim: 4, bias: true, out_proj: true}\n"
      "    - {type: SelfAttention, dim: 4, out_proj: true}\n"
      "    - {type: FeedForward, dim: 4, hidden: 6, activation: gelu}\n"
      "    - {type: OutputProjection, bias: false}\n",
      "    - {type: TransformerBlock, name: b, repeat: 2, dim: 4, hidden: 8, heads: 2,"
      " bias: true, out_proj: true, norm: pre}\n"
      "    - {type: TransformerBlock, dim: 4, hidden: 8}\n"
      "    - {type: OutputProjection, tie: embedding.token}\n",
  };
  for (const std::string& layers : models) {
    const std::string yaml =
        "model:\n  max_seq_len: 5\n  vocab_size: 7\n  layers:\n"
        "    - {type: Embedding, dim: 4}\n" +
        layers;
    Rng rng(3);
    std::size_t count = 0;
    BOOST_CHECK_NO_THROW(
        count = build_model<double>(ConfigNode::parse(yaml, "t.yaml").get("model"), 0, rng)
                    .parameter_count());
    BOOST_TEST_MESSAGE("built " << count << " parameters");
    BOOST_TEST(count > 28u);  // more than the Embedding
  }
}

BOOST_AUTO_TEST_CASE(a_wrong_parameter_count_is_reported_as_a_layer_bug) {
  BOOST_TEST(build("{type: TestClaims, claim: 2}").parameter_count() == 20u);
  const std::string message = error_of([] { build("{type: TestClaims, claim: 3}"); });
  BOOST_TEST(message.find("parameter_count() said 3 for test_claims but it allocated 2 (a bug in "
                          "the layer)") != std::string::npos,
             message);
}

BOOST_AUTO_TEST_CASE(an_oversized_model_is_refused_before_its_layer_is_built) {
  Claims<float>::constructed = false;
  const std::string message = error_of([] { build("{type: TestClaims, claim: 1000000000000}"); });
  BOOST_TEST(message.find("test.yaml:7:7: model.layers[1] (TestClaims \"test_claims\"): model too "
                          "large: layer test_claims has 1,000,000,000,000 parameters, bringing "
                          "the model to 1,000,000,000,018") == 0,
             message);
  BOOST_TEST(!Claims<float>::constructed);  // refused before the factory allocated anything

  // The real thing: 60000-wide blocks; the first is refused before allocation.
  const std::string yaml =
      "model:\n  max_seq_len: 16\n  vocab_size: 100\n  layers:\n"
      "    - {type: Embedding, dim: 60000}\n"
      "    - {type: TransformerBlock, name: blocks, repeat: 100, dim: 60000, hidden: 60000}\n";
  Rng rng(1);
  const std::string huge =
      error_of([&] { build_model<float>(ConfigNode::parse(yaml, "t.yaml").get("model"), 0, rng); });
  BOOST_TEST(huge.find("t.yaml:6:7: model.layers[1] (TransformerBlock \"blocks\"): model too "
                       "large: layer blocks.0 has 18,000,360,000 parameters") == 0,
             huge);
}

BOOST_AUTO_TEST_CASE(a_model_over_budget_in_total_is_refused_before_any_layer_is_built) {
  // Each layer fits max_parameters (30), all together do not: Embedding 18, Linear 9,
  // GELU and Dropout 0, then Linear 16 brings the model to 43. Before, the layers before
  // the last were built first (minutes and gigabytes for a big model). Building a layer
  // draws its initial weights from the run's generator: an untouched one shows none was.
  const std::string yaml =
      "model:\n  max_seq_len: 4\n  vocab_size: 5\n  max_parameters: 30\n  layers:\n"
      "    - {type: Embedding, dim: 2}\n    - {type: Linear, out: 3}\n"
      "    - {type: GELU}\n    - {type: Dropout}\n    - {type: Linear, name: wide, out: 4}\n";
  const ConfigNode model_node = ConfigNode::parse(yaml, "t.yaml").get("model");
  Rng rng(1);
  const std::string message = error_of([&] { build_model<float>(model_node, 0, rng); });
  BOOST_TEST(message ==
                 "t.yaml:10:7: model.layers[4] (Linear \"wide\"): model too large: layer wide has "
                 "16 parameters, bringing the model to 43 (688 bytes to train), over "
                 "model.max_parameters (30)",
             message);
  BOOST_TEST(rng.uniform() == Rng(1).uniform());  // no layer drew its weights
  // The same through the memory budget (16 bytes per float parameter: 30 parameters).
  EnvVar budget("STRATA_MEMORY_BUDGET", "480");
  const ConfigNode unlimited = ConfigNode::parse(yaml.substr(0, yaml.find("  max_parameters")) +
                                                     yaml.substr(yaml.find("  layers:")),
                                                 "t.yaml")
                                   .get("model");
  Rng other(1);
  BOOST_TEST(error_of([&] { build_model<float>(unlimited, 0, other); })
                 .find("model too large: layer wide has 16 parameters, bringing the model to "
                       "43") != std::string::npos);
  BOOST_TEST(other.uniform() == Rng(1).uniform());
}

BOOST_AUTO_TEST_CASE(composites_are_counted_before_any_layer_is_built) {
  // Sequential and Residual count their lists from the configs: Embedding 18, Residual
  // 2 * 2 + 2 * 2 + 2 = 10, Sequential 2 * 5 + 5 + 0 + 5 * 2 + 2 = 27 (and its output, 2
  // features, feeds the next layer), then Linear 2 * 3 + 3 = 9 brings 55 to 64, past 63.
  const std::string yaml =
      "model:\n  max_seq_len: 4\n  vocab_size: 5\n  max_parameters: 63\n  layers:\n"
      "    - {type: Embedding, dim: 2}\n"
      "    - {type: Residual, layers: [{type: LayerNorm}, {type: Linear, out: 2}]}\n"
      "    - {type: Sequential, layers: [{type: Linear, out: 5}, {type: ReLU},"
      " {type: Linear, out: 2}]}\n"
      "    - {type: Linear, name: last, out: 3}\n";
  const ConfigNode model_node = ConfigNode::parse(yaml, "t.yaml").get("model");
  Rng rng(1);
  const std::string message = error_of([&] { build_model<float>(model_node, 0, rng); });
  BOOST_TEST(message.find("t.yaml:9:7: model.layers[3] (Linear \"last\"): model too large: layer "
                          "last has 9 parameters, bringing the model to 64") == 0,
             message);
  BOOST_TEST(rng.uniform() == Rng(1).uniform());  // no layer drew its weights
}

BOOST_AUTO_TEST_CASE(max_parameters_and_the_memory_budget_set_the_limit) {
  BOOST_TEST(build("{type: TestClaims, claim: 2}", "20").parameter_count() == 20u);
  std::string message = error_of([] { build("{type: TestClaims, claim: 2}", "19"); });
  BOOST_TEST(message.find("over model.max_parameters (19)") != std::string::npos, message);
  {
    // 320 bytes at 16 per float parameter: 20 parameters.
    EnvVar budget("STRATA_MEMORY_BUDGET", "320");
    BOOST_TEST(memory_budget_bytes() == 320u);
    BOOST_TEST(build("{type: TestClaims, claim: 2}").parameter_count() == 20u);
    EnvVar smaller("STRATA_MEMORY_BUDGET", "0.3k");
    message = error_of([] { build("{type: TestClaims, claim: 2}"); });
    BOOST_TEST(message.find("over the memory budget of 300 bytes (STRATA_MEMORY_BUDGET)") !=
                   std::string::npos,
               message);
  }
  {
    EnvVar budget("STRATA_MEMORY_BUDGET", "8G");
    BOOST_TEST(memory_budget_bytes() == 8000000000u);
  }
  for (const char* bad : {"", "lots", "-1G", "8X", "0"}) {
    EnvVar budget("STRATA_MEMORY_BUDGET", bad);
    BOOST_TEST(error_of([] { memory_budget_bytes(); }).find("STRATA_MEMORY_BUDGET") == 0, bad);
  }
  BOOST_TEST(memory_budget_bytes() > (std::uint64_t(1) << 26));  // the machine's memory
}

BOOST_AUTO_TEST_CASE(the_memory_budget_respects_the_address_space_limit) {
  // `ulimit -v`: before, the budget was the machine's memory and an allocation past the
  // limit ended in a bare std::bad_alloc.
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_AS, &saved) == 0);
  std::uint64_t mapped = 0;
  std::ifstream("/proc/self/statm") >> mapped;
  mapped *= std::uint64_t(::sysconf(_SC_PAGE_SIZE));
  const std::uint64_t room = std::uint64_t(1) << 30;
  rlimit tight = saved;
  tight.rlim_cur = mapped + room;
  if (saved.rlim_max != RLIM_INFINITY && tight.rlim_cur > saved.rlim_max) return;  // cannot
  BOOST_REQUIRE(::setrlimit(RLIMIT_AS, &tight) == 0);
  const MemoryBudget budget = memory_budget();
  ::setrlimit(RLIMIT_AS, &saved);
  BOOST_TEST(budget.source == "the address-space limit, ulimit -v");
  // What is left under the limit (the process maps a little more while it measures).
  BOOST_TEST(budget.bytes <= room);
  BOOST_TEST(budget.bytes > room / 2);
}

BOOST_AUTO_TEST_CASE(the_last_layer_must_score_the_vocabulary) {
  // Before, `check` said OK and training failed at the first target id past the width.
  const std::string yaml =
      "model:\n  max_seq_len: 4\n  layers:\n    - {type: Embedding, dim: 2}\n"
      "    - {type: Linear, out: 3}\n";
  Rng rng(1);
  const ConfigNode model_node = ConfigNode::parse(yaml, "test.yaml").get("model");
  const Model<float> model = build_model<float>(model_node, 5, rng);
  const std::string message = error_of([&] { require_vocabulary_output(model, model_node); });
  BOOST_TEST(message ==
             "test.yaml:5:7: model.layers[1] (Linear \"linear\"): the last layer must output one "
             "score per vocabulary token: its output (*, *, 3) has 3 features, the vocabulary "
             "has 5 tokens (end the model with OutputProjection)");
  require_vocabulary_output(build_model<float>(model_node, 3, rng), model_node);  // fits
}

BOOST_AUTO_TEST_CASE(phase_names_fit_metrics_csv_and_the_command_line) {
  auto config = [](const std::string& name) {
    return "model: {max_seq_len: 4, layers: []}\noptimizer: {type: SGD}\n"
           "training:\n  phases:\n    - {name: " +
           name + ", data: d.txt, epochs: 1}\n";
  };
  for (const std::string name : {"pretrain", "phase-2", "v1.5_chat"})
    BOOST_TEST(parse_run_config(config(name), "run.yaml").phases[0].name == name);
  for (const std::string name : {"\"a,b\"", "\"a=b\"", "\"two words\"", "\"\"", "\"caf\u00e9\""})
    BOOST_TEST(error_of([&] {
                 parse_run_config(config(name), "run.yaml");
               }).find("run.yaml:5:14: training.phases[0]: phase name ") == 0,
               name);
  BOOST_TEST(error_of([&] { parse_run_config(config("\"a,b\""), "run.yaml"); }) ==
             "run.yaml:5:14: training.phases[0]: phase name \"a,b\" may only use letters, "
             "digits, '_', '.' and '-' (it is written to metrics.csv and given as --data "
             "NAME=PATH)");
}

BOOST_AUTO_TEST_CASE(prompts_without_a_known_word_are_reported) {
  const WordTokenizer vocabulary = WordTokenizer::build({"the cat sat </s>"});
  BOOST_TEST(unknown_prompt_words(vocabulary, "the zebra sat ?") ==
             (std::vector<std::string>{"zebra", "?"}));
  RunConfig config = parse_run_config(
      "model: {max_seq_len: 4, layers: []}\noptimizer: {type: SGD}\n"
      "generation: {prompts: [\"the dog\", \"zebra ?\", \" \"]}\n",
      "run.yaml");
  BOOST_TEST(unanswerable_prompts(config, vocabulary) ==
             (std::vector<std::string>{
                 "run.yaml: generation.prompts[1] \"zebra ?\": none of its words is in the "
                 "vocabulary (zebra, ?), so it reads as <unk> only",
                 "run.yaml: generation.prompts[2] \" \": the prompt has no words"}));
}

BOOST_AUTO_TEST_CASE(a_layer_without_a_count_is_measured_after_it_is_built) {
  BOOST_TEST(build("{type: TestUncounted, claim: 0}", "20").parameter_count() == 20u);
  const std::string message = error_of([] { build("{type: TestUncounted, claim: 0}", "19"); });
  BOOST_TEST(message.find("layer test_uncounted has 2 parameters, bringing the model to 20") !=
                 std::string::npos,
             message);
}

BOOST_AUTO_TEST_CASE(hostile_npy_shapes_are_refused) {
  auto npy = [](const std::string& shape, std::size_t floats) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    header.append(63 - (10 + header.size()) % 64, ' ');
    header += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += char(header.size() & 0xFF);
    out += char(header.size() >> 8);
    return out + header + std::string(floats * 4, '\0');
  };
  auto decode = [](const std::string& payload) {
    return decode_npz(store_zip({{"a.npy", payload}}), "x.npz");
  };
  BOOST_TEST(decode(npy("(2, 3)", 6)).front().data.size() == 6u);
  BOOST_TEST(decode(npy("(0, 5)", 0)).front().shape == (std::vector<std::size_t>{0, 5}));
  for (const auto& [shape, floats] : std::vector<std::pair<std::string, std::size_t>>{
           {"(4294967296, 4294967296)", 0},  // the product wraps to 0 in 64 bits
           {"(99999999999999999999999,)", 1},
           {"(3, 3)", 8},
           {"(-1,)", 1},
           {"(a,)", 1}}) {
    const std::string message = error_of([&, s = shape, n = floats] { decode(npy(s, n)); });
    BOOST_TEST(message.find("x.npz: member \"a\": ") == 0, shape << ": " << message);
  }
}

BOOST_AUTO_TEST_CASE(fuzzer_findings_in_manifests_are_errors) {
  // fuzz_checkpoint found "crc32": 2e66 (a float cast to uint32: undefined behaviour);
  // every numeric field now takes only an integer in range.
  TempDir dir("hostile-manifest");
  Checkpoint c;
  c.config_text = "seed: 1\n";
  c.tokenizer_files = {{"vocab.txt", "a\n"}};
  save_checkpoint(dir.path.string(), c);
  const std::string path = checkpoint_directory(dir.path.string()) + "/manifest.json";
  const std::string good = read_file(path);
  BOOST_CHECK_NO_THROW(load_checkpoint(dir.path.string()));
  // The manifest with the first "key": value replaced by "key": `value`.
  auto with = [&](const std::string& key, const std::string& value) {
    std::string text = good;
    const auto at = text.find("\"" + key + "\": ");
    BOOST_REQUIRE(at != std::string::npos);
    const auto from = at + key.size() + 4;
    text.replace(from, text.find_first_of(",\n}", from) - from, value);
    write_file_atomic(path, text);
    return error_of([&] { load_checkpoint(dir.path.string()); });
  };
  for (const auto& [key, value, expected] : std::vector<std::array<std::string, 3>>{
           {"crc32", "2e66",
            "files.config.yaml.crc32 must be an integer in [0, 4294967295], got 2e+66"},
           {"crc32", "-5", "crc32 must be an integer"},
           {"crc32", "4294967296", "crc32 must be an integer"},
           {"bytes", "1.5e300", "bytes must be an integer"},
           {"optimizer_steps", "-3", "optimizer_steps must be"},
           {"seed", "1e30", "seed must be an integer"},
           {"step", "\"zero\"", "position.step must be"},
           {"next_batch", "18446744073709551615", "position.next_batch must be"},
           {"epoch_loss_sum", "null", "incomplete manifest"},
           {"format", "\"strata-checkpoint-0\"", "not a strata-checkpoint-1 manifest"}}) {
    const std::string message = with(key, value);
    BOOST_TEST(message.find(path + ": ") == 0, message);
    BOOST_TEST(message.find(expected) != std::string::npos,
               key << ": " << value << " -> " << message);
  }
  write_file_atomic(path, "[1, 2]");
  BOOST_TEST(error_of([&] {
               load_checkpoint(dir.path.string());
             }).find("not a strata-checkpoint-1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(resume_from_an_end_of_phase_checkpoint_equals_an_uninterrupted_run) {
  // Two shuffled phases; the cut run's last checkpoint is the end of phase one, so the
  // resumed run must draw phase two's shuffles from the saved RNG state (not from the
  // state a freshly restored model happens to have).
  TempDir dir("phase-resume");
  const std::string data =
      dir.write("d.json",
                "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
                " \"birds sing at dawn </s>\", \"rain falls from grey clouds </s>\"]");
  const std::string yaml =
      "seed: 11\nmodel:\n  max_seq_len: 16\n  layers:\n    - {type: Embedding, dim: 8}\n"
      "    - {type: TransformerBlock, dim: 8, hidden: 16}\n    - {type: OutputProjection}\n"
      "optimizer: {type: Adam, lr: 0.01}\ntraining:\n  phases:\n"
      "    - {name: one, data: " +
      data +
      ", epochs: 2, shuffle: true}\n"
      "    - {name: two, data: " +
      data + ", epochs: 3, shuffle: true}\n";
  const TrainResult whole = strata::testing::train_from_yaml(yaml, dir.file("whole"));
  const TrainResult cut =
      strata::testing::train_from_yaml(yaml, dir.file("cut"), 9);  // phase one is 8 steps
  BOOST_TEST(!cut.finished);
  const Checkpoint checkpoint = load_checkpoint(dir.file("cut"));
  BOOST_TEST(checkpoint.position.step == 8);
  BOOST_TEST(checkpoint.position.phase == 1u);
  const TrainResult rest = strata::testing::resume_training(dir.file("cut"));
  BOOST_TEST(rest.finished);
  const Checkpoint a = load_checkpoint(dir.file("whole"));
  const Checkpoint b = load_checkpoint(dir.file("cut"));
  for (std::size_t i = 0; i < a.parameters.size(); ++i)
    BOOST_TEST(a.parameters[i].data == b.parameters[i].data, a.parameters[i].name);
  // metrics.csv: the same rows (the cut run's own rows for phase one, then the rest).
  auto rows = [](const std::string& path) {  // phase,epoch,step,loss,lr,tokens (no timings)
    std::vector<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      std::size_t end = 0;
      for (int field = 0; field < 6 && end != std::string::npos; ++field)
        end = line.find(',', end + 1);
      out.push_back(line.substr(0, end));
    }
    return out;
  };
  BOOST_TEST(rows(dir.file("whole") + "/metrics.csv") == rows(dir.file("cut") + "/metrics.csv"));
  BOOST_TEST(rows(dir.file("cut") + "/metrics.csv").size() == 6u);
}

BOOST_AUTO_TEST_SUITE_END()
