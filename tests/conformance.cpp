// The layer contract, checked on every registered layer type (built-ins and the test
// plugin's), from the example each one declares in its registration: a new layer cannot
// be added without these checks (framework/conformance.hpp says what they are).
#include "framework/conformance.hpp"

#include <boost/test/unit_test.hpp>
#include <set>
#include <string>

#include "framework/plugin.hpp"

using namespace strata;

namespace {

// Layers built to break the contract, and what must catch them.
const std::set<std::string> kBroken = {"TestBrokenScale", "TestOverwriteScale"};

}  // namespace

BOOST_AUTO_TEST_SUITE(conformance)

BOOST_AUTO_TEST_CASE(every_registered_layer_passes_the_contract_checks) {
  load_plugin(STRATA_TEST_PLUGIN);
  std::size_t checked = 0;
  for (const LayerInfo* info : layer_registry().all()) {
    if (kBroken.count(info->type)) continue;
    const ConformanceResult result = check_layer_conformance(*info);
    BOOST_TEST_MESSAGE(info->type << " (" << info->origin << "):\n" << result.report());
    BOOST_TEST(result.ok(), info->type << ":\n" << result.report());
    // type, shapes, gradients, release, and the shape rule when the layer declares one
    BOOST_TEST(result.passed.size() == (info->shape_double ? 5u : 4u), info->type);
    ++checked;
  }
  BOOST_TEST(checked >= 13u);  // 12 built-ins and TestScale at least
  BOOST_TEST(layer_registry().find("TestScale").origin != "built-in");
}

BOOST_AUTO_TEST_CASE(a_wrong_backward_fails_the_gradient_check) {
  load_plugin(STRATA_TEST_PLUGIN);
  const ConformanceResult result =
      check_layer_conformance(layer_registry().find("TestBrokenScale"));
  BOOST_TEST_MESSAGE(result.report());
  BOOST_REQUIRE(result.failed.size() == 1u);
  BOOST_TEST(result.failed[0].find("gradients") == 0u);
}

BOOST_AUTO_TEST_CASE(a_backward_that_overwrites_the_gradient_fails_the_accumulate_check) {
  load_plugin(STRATA_TEST_PLUGIN);
  const ConformanceResult result =
      check_layer_conformance(layer_registry().find("TestOverwriteScale"));
  BOOST_TEST_MESSAGE(result.report());
  BOOST_REQUIRE(result.failed.size() == 1u);
  BOOST_TEST(result.failed[0].find("layer.s accumulate (backward twice = 2x): 0.5") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_layer_without_an_example_is_reported) {
  LayerInfo info = layer_registry().find("ReLU");
  info.example_input.clear();
  const ConformanceResult result = check_layer_conformance(info);
  BOOST_REQUIRE(result.failed.size() == 1u);
  BOOST_TEST(result.failed[0].find("declares no example") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_shape_rule_other_than_output_shape_is_reported) {
  // The memory budget counts the layers after a Linear from this rule: one that forgot
  // `out` would count them on the wrong widths.
  LayerInfo info = layer_registry().find("Linear");
  info.shape_double = [](const LayerConfig<double>& c) { return c.input_shape(); };
  const ConformanceResult result = check_layer_conformance(info);
  BOOST_REQUIRE(result.failed.size() == 1u);
  BOOST_TEST(result.failed[0] ==
                 "config_output_shape says (*, *, 4) but output_shape gives (*, *, 3) for "
                 "(*, *, 4)",
             result.failed[0]);
}

BOOST_AUTO_TEST_CASE(a_type_name_other_than_the_registered_one_is_reported) {
  LayerInfo info = layer_registry().find("Linear");
  info.type = "NotLinear";  // registered under another name than its type() says
  const ConformanceResult result = check_layer_conformance(info);
  BOOST_REQUIRE(result.failed.size() == 1u);
  BOOST_TEST(result.failed[0] == "type() is \"Linear\", registered as \"NotLinear\"");
}

BOOST_AUTO_TEST_SUITE_END()
