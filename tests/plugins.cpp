// Runtime plugins: the libraries built from tests/plugins/*.cpp, loaded with
// load_plugin() as `--plugin` and `plugins:` do. Each failure must be an Error that
// names the library and says what is wrong; none may end the process.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "framework/grad_check.hpp"
#include "framework/plugin.hpp"
#include "framework/registry.hpp"
#include "optimizers/optimizer_registry.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "text/tokenizer.hpp"

using namespace strata;
using strata::testing::TempDir;

namespace {

// Only what a registration reads; never built.
struct Clash {
  static constexpr const char* kSummary = "a second \"word\"";
  static Schema schema() { return {}; }
  static std::unique_ptr<Tokenizer> from_data(const TextSource&, const ConfigSection&) {
    return nullptr;
  }
  static std::unique_ptr<Tokenizer> load_files(const TokenizerFiles&, const std::string&) {
    return nullptr;
  }
};

std::string load_error(const std::string& path) {
  try {
    load_plugin(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no Error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string canonical(const std::string& path) { return std::filesystem::canonical(path).string(); }

Tensor<double> random_input(std::vector<std::size_t> shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x = Tensor<double>::from_shape(shape);
  for (auto& v : x) v = rng.normal(0, 1);
  return x;
}

// A layer of `type` made through the registry, as a config would make it.
std::unique_ptr<Layer<double>> make_layer(const std::string& type, const std::string& yaml) {
  static Rng rng(5);
  const ConfigNode node = ConfigNode::parse(yaml, "layer.yaml");
  const LayerInfo& info = layer_registry().find(type);
  LayerConfig<double> config(ConfigSection(node, type, info.schema, {"type"}), "scale",
                             Shape{kAnyDim, kAnyDim, 4}, ModelContext{}, rng);
  return info.factory<double>()(config);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(plugins)

BOOST_AUTO_TEST_CASE(missing_file_names_the_path_and_the_working_directory) {
  const std::string relative = load_error("no/such/libplugin.so");
  BOOST_TEST_MESSAGE(relative);
  BOOST_TEST(contains(relative, "no/such/libplugin.so: plugin library not found"));
  BOOST_TEST(contains(relative, "relative path is read from the working directory, " +
                                    std::filesystem::current_path().string()));
  const std::string absolute = load_error("/no/such/libplugin.so");
  BOOST_TEST(absolute == "/no/such/libplugin.so: plugin library not found");
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_library) {
  TempDir dir("plugin");
  const std::string path = dir.write("libnot_a_library.so", "just text\n");
  const std::string error = load_error(path);
  BOOST_TEST_MESSAGE(error);
  BOOST_TEST(contains(error, path + ": cannot load plugin ("));
}

BOOST_AUTO_TEST_CASE(a_library_that_registers_nothing) {
  const std::string error = load_error(STRATA_EMPTY_PLUGIN);
  BOOST_TEST_MESSAGE(error);
  BOOST_TEST(error == std::string(STRATA_EMPTY_PLUGIN) +
                          ": the library registered no layers, optimizers or tokenizers (use "
                          "STRATA_REGISTER_LAYER, STRATA_REGISTER_OPTIMIZER or "
                          "STRATA_REGISTER_TOKENIZER)");
}

BOOST_AUTO_TEST_CASE(a_clashing_type_name_is_reported_and_the_rest_still_registers) {
  const std::string error = load_error(STRATA_CLASH_PLUGIN);
  BOOST_TEST_MESSAGE(error);
  BOOST_TEST(error == std::string(STRATA_CLASH_PLUGIN) +
                          ": layer type \"Linear\" is already registered (a built-in type): "
                          "give yours another name");
  // The built-in is untouched; the library's other layer is there, with its origin.
  BOOST_TEST(layer_registry().find("Linear").origin == "built-in");
  BOOST_TEST(layer_registry().find("Linear").summary.find("affine") != std::string::npos);
  BOOST_TEST(layer_registry().find("TestClashFree").origin == canonical(STRATA_CLASH_PLUGIN));
}

BOOST_AUTO_TEST_CASE(registering_a_taken_name_at_load_time_records_instead_of_throwing) {
  const std::size_t before = registration_log().errors.size();
  LayerInfo info = layer_registry().find("ReLU");
  bool added = true;
  BOOST_CHECK_NO_THROW(added = register_layer_at_load(info));
  BOOST_TEST(!added);
  BOOST_REQUIRE(registration_log().errors.size() == before + 1);
  BOOST_TEST(contains(registration_log().errors.back(), "\"ReLU\" is already registered"));
}

BOOST_AUTO_TEST_CASE(a_plugin_registers_its_layers_with_their_origin) {
  // Another suite of this process (conformance) may have loaded it already.
  const auto loaded = loaded_plugins();
  const bool fresh =
      std::find(loaded.begin(), loaded.end(), canonical(STRATA_TEST_PLUGIN)) == loaded.end();
  const int registered = load_plugin(STRATA_TEST_PLUGIN);
  BOOST_TEST(registered == (fresh ? 4 : 0));
  for (const std::string type : {"TestScale", "TestBrokenScale", "TestOverwriteScale", "SwiGLU"}) {
    BOOST_REQUIRE(layer_registry().contains(type));
    BOOST_TEST(layer_registry().find(type).origin == canonical(STRATA_TEST_PLUGIN));
  }
  BOOST_TEST(layer_registry().find("TestScale").schema.at(0).name == "factor");
  // The same library again (by any path to it) is a no-op, not a clash.
  BOOST_TEST(load_plugin(STRATA_TEST_PLUGIN) == 0);
  const auto relative = std::filesystem::relative(STRATA_TEST_PLUGIN).string();
  BOOST_TEST(load_plugin(relative) == 0);
}

BOOST_AUTO_TEST_CASE(a_plugin_with_only_an_optimizer_loads_and_its_optimizer_steps) {
  BOOST_TEST(load_plugin(STRATA_OPTIMIZER_PLUGIN) == 1);
  const OptimizerInfo& info = optimizer_registry().find("TestSignDescent");
  BOOST_TEST(info.origin == canonical(STRATA_OPTIMIZER_PLUGIN));
  // The registry gave it the keys every optimizer has, and make_optimizer read them.
  BOOST_REQUIRE(info.schema.size() == 2u);
  BOOST_TEST(info.schema[0].name == "lr");
  BOOST_TEST(info.schema[1].name == "clip_norm");
  const ConfigNode node =
      ConfigNode::parse("{type: TestSignDescent, lr: 0.25, clip_norm: 2}", "run.yaml");
  auto optimizer = make_optimizer<double>(node);
  BOOST_TEST(optimizer->default_lr() == 0.25);
  BOOST_TEST(optimizer->clip_norm() == 2.0);
  Parameter<double> p("w", Tensor<double>{1.0, 1.0, 1.0});
  p.grad = Tensor<double>{-3.0, 0.0, 0.5};
  optimizer->step({&p}, 0.25);
  BOOST_TEST(p.value(0) == 1.25);
  BOOST_TEST(p.value(1) == 1.0);
  BOOST_TEST(p.value(2) == 0.75);
  BOOST_TEST(optimizer->steps() == 1);
}

BOOST_AUTO_TEST_CASE(a_clashing_optimizer_name_is_reported_and_the_rest_still_registers) {
  const std::string error = load_error(STRATA_OPTIMIZER_CLASH_PLUGIN);
  BOOST_TEST_MESSAGE(error);
  BOOST_TEST(error == std::string(STRATA_OPTIMIZER_CLASH_PLUGIN) +
                          ": optimizer type \"SGD\" is already registered (a built-in type): "
                          "give yours another name");
  BOOST_TEST(optimizer_registry().find("SGD").origin == "built-in");
  BOOST_TEST(optimizer_registry().find("SGD").summary.find("momentum") != std::string::npos);
  BOOST_TEST(optimizer_registry().find("TestClashFreeOptimizer").origin ==
             canonical(STRATA_OPTIMIZER_CLASH_PLUGIN));
}

BOOST_AUTO_TEST_CASE(plugin_layers_work_through_the_registry_and_the_checker) {
  load_plugin(STRATA_TEST_PLUGIN);
  auto good = make_layer("TestScale", "{type: TestScale, factor: 3}");
  const Tensor<double> x = random_input({2, 3, 4}, 9);
  const Tensor<double>& y = good->forward(x, Mode::eval);
  BOOST_TEST(y(1, 2, 3) == 3 * x(1, 2, 3));
  const GradCheckResult ok = check_gradients(*good, x);
  BOOST_TEST_MESSAGE("TestScale: " << ok.report());
  BOOST_TEST(ok.max_error() <= 1e-6);
  // The checker must catch the deliberately wrong backward (dx = dy instead of 3 dy:
  // relative error |1 - 3| / 3).
  auto broken = make_layer("TestBrokenScale", "{type: TestBrokenScale, factor: 3}");
  const GradCheckResult bad = check_gradients(*broken, x);
  BOOST_TEST_MESSAGE("TestBrokenScale: " << bad.report());
  BOOST_TEST(bad.input_error == 2.0 / 3.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(a_run_config_loads_its_plugins_before_building_the_model) {
  TempDir dir("plugin-run");
  const std::string data = dir.write("data.json", R"(["a b c </s>", "b c a </s>"])");
  const std::string yaml = std::string("plugins: [") + STRATA_TEST_PLUGIN + "]\n" +
                           "model:\n"
                           "  max_seq_len: 8\n"
                           "  layers:\n"
                           "    - {type: Embedding, dim: 4}\n"
                           "    - {type: TestScale, factor: 0.5}\n"
                           "    - {type: OutputProjection}\n"
                           "optimizer: {type: Adam}\n"
                           "training:\n"
                           "  phases: [{name: p, data: " +
                           data + ", epochs: 1}]\n";
  const LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "run.yaml"));
  BOOST_TEST(lm.model.layers().at(1)->type() == "TestScale");

  const std::string missing =
      "plugins: [" + dir.file("libabsent.so") + "]\n" + yaml.substr(yaml.find("model:"));
  try {
    LanguageModel::create(parse_run_config(missing, "run.yaml"));
    BOOST_FAIL("a missing plugin was accepted");
  } catch (const Error& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(std::string(e.what()) ==
               "run.yaml: plugins: " + dir.file("libabsent.so") + ": plugin library not found");
  }
}

BOOST_AUTO_TEST_CASE(a_plugin_tokenizer_is_chosen_in_yaml_and_saved_with_the_run) {
  TempDir dir("plugin-tokenizer");
  // `plugins:` loads it before the tokenizer is chosen (STRATA_REGISTER_TOKENIZER).
  const std::string data = dir.write("data.json", R"(["ab ba <end>", "ba ab <end>"])");
  const std::string yaml = std::string("plugins: [") + STRATA_TOKENIZER_PLUGIN + "]\n" +
                           "seed: 3\n"
                           "tokenizer: {type: TestBytes, eos_text: <end>}\n"
                           "model:\n"
                           "  max_seq_len: 8\n"
                           "  layers: [{type: Embedding, dim: 4}, {type: OutputProjection}]\n"
                           "optimizer: {type: Adam}\n"
                           "training:\n"
                           "  phases: [{name: p, data: " +
                           data + ", epochs: 2}]\n";
  Run run = Run::start(parse_run_config(yaml, "run.yaml"));
  const TokenizerInfo& info = tokenizer_registry().find("TestBytes");
  BOOST_TEST(info.origin == canonical(STRATA_TOKENIZER_PLUGIN));
  BOOST_TEST(info.schema.at(0).name == "eos_text");
  const Tokenizer& tokenizer = *run.language_model()->tokenizer;
  BOOST_TEST(tokenizer.type() == "TestBytes");
  BOOST_TEST(tokenizer.size() == 259u);
  BOOST_TEST(tokenizer.encode("a<end>").ids == (std::vector<std::int32_t>{3 + 'a', 2}));
  TrainOptions options;
  options.out_dir = dir.file("run");
  BOOST_TEST(run.train(options).finished);
  // The checkpoint holds the plugin's type and file; a resumed run rebuilds it.
  Run again = Run::resume(dir.file("run"));
  BOOST_TEST(again.language_model()->tokenizer->type() == "TestBytes");
  BOOST_TEST(again.language_model()->tokenizer->decode({3 + 'x', 2}) == "x<end>");
}

BOOST_AUTO_TEST_CASE(a_clashing_tokenizer_name_goes_to_the_registration_log) {
  const std::size_t before = registration_log().errors.size();
  BOOST_TEST(!register_tokenizer_at_load<Clash>("word"));
  BOOST_REQUIRE(registration_log().errors.size() == before + 1);
  BOOST_TEST(registration_log().errors.back() ==
             "tokenizer type \"word\" is already registered (a built-in type): give yours "
             "another name");
  BOOST_TEST(tokenizer_registry().find("word").origin == "built-in");
}

BOOST_AUTO_TEST_CASE(a_loaded_library_stands_in_for_a_relative_config_path_of_its_name) {
  // A run used from another directory: its config's relative path is not there, but
  // `--plugin` loaded the same library by another path.
  load_plugin(STRATA_TEST_PLUGIN);
  const std::string name = std::filesystem::path(STRATA_TEST_PLUGIN).filename().string();
  RunConfig config;
  config.file = "run.yaml";
  config.plugins = {"elsewhere/" + name};
  BOOST_CHECK_NO_THROW(load_config_plugins(config));
  config.plugins = {"elsewhere/libstrata_other_layers.so"};  // no such library loaded
  try {
    load_config_plugins(config);
    BOOST_FAIL("a missing plugin was accepted");
  } catch (const Error& e) {
    BOOST_TEST(contains(e.what(),
                        "run.yaml: plugins: elsewhere/libstrata_other_layers.so: "
                        "plugin library not found"));
  }
}

BOOST_AUTO_TEST_SUITE_END()
