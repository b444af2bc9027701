// Generation: KV cache equals full recomputation, seeded sampling repeats, prompt errors.
#include <boost/test/unit_test.hpp>

#include "framework/errors.hpp"
#include "framework/model.hpp"
#include "models/generator.hpp"
#include "test_support.hpp"

using namespace strata;

namespace {

Model<float> random_model(const std::string& norm, int heads, std::uint64_t seed) {
  Rng rng(seed);
  const ConfigNode root =
      ConfigNode::parse(strata::testing::tiny_model_yaml(20, norm, heads), "t.yaml");
  return build_model<float>(root.get("model"), 20, rng);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(generation)

BOOST_AUTO_TEST_CASE(kv_cache_equals_full_recompute_token_for_token) {
  for (const std::string norm : {"post", "pre"}) {
    for (int heads : {1, 2}) {
      Model<float> model = random_model(norm, heads, 3);
      const std::vector<std::int32_t> prompt = {4, 9, 1};
      for (double temperature : {0.0, 1.0}) {
        SamplingOptions options;
        options.max_tokens = 12;
        options.temperature = temperature;
        Rng a(5), b(5);
        options.use_cache = true;
        const auto cached = generate(model, prompt, -1, options, a);
        options.use_cache = false;
        const auto full = generate(model, prompt, -1, options, b);
        BOOST_TEST(cached.size() == 12u);
        BOOST_TEST(cached == full, norm << " heads=" << heads << " T=" << temperature);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(cached_logits_match_full_forward) {
  Model<float> model = random_model("pre", 2, 9);
  Tensor<float> ids = Tensor<float>::from_shape({1, 6});
  const float values[] = {3, 1, 4, 1, 5, 9};
  std::copy(values, values + 6, ids.begin());
  const Tensor<float> full = model.forward(ids, Mode::eval);
  model.reset_state();
  for (std::size_t t = 0; t < 6; ++t) {
    Tensor<float> one = Tensor<float>::from_shape({1, 1});
    one(0, 0) = ids(0, t);
    const Tensor<float>& step = model.forward_step(one, t);
    for (std::size_t v = 0; v < 20; ++v)
      BOOST_TEST(step(0, 0, v) == full(0, t, v), boost::test_tools::tolerance(1e-5f));
  }
}

BOOST_AUTO_TEST_CASE(seeded_sampling_repeats_and_seeds_differ) {
  Model<float> model = random_model("post", 2, 4);
  SamplingOptions options;
  options.max_tokens = 12;
  options.temperature = 1.5;
  options.top_k = 10;
  options.top_p = 0.95;
  Rng a(1), b(1), c(2);
  const auto first = generate(model, {1, 2}, -1, options, a);
  const auto again = generate(model, {1, 2}, -1, options, b);
  const auto other = generate(model, {1, 2}, -1, options, c);
  BOOST_TEST(first == again);
  BOOST_TEST(first != other);
}

BOOST_AUTO_TEST_CASE(top_k_one_and_tiny_top_p_are_greedy) {
  Model<float> model = random_model("post", 1, 6);
  SamplingOptions greedy;
  greedy.max_tokens = 10;
  SamplingOptions k1 = greedy, p0 = greedy;
  k1.temperature = p0.temperature = 1.0;
  k1.top_k = 1;
  p0.top_p = 1e-9;
  Rng r1(1), r2(2), r3(3);
  const auto g = generate(model, {2, 3}, -1, greedy, r1);
  BOOST_TEST(generate(model, {2, 3}, -1, k1, r2) == g);
  BOOST_TEST(generate(model, {2, 3}, -1, p0, r3) == g);
}

BOOST_AUTO_TEST_CASE(stops_at_eos_and_at_max_length) {
  Model<float> model = random_model("post", 1, 6);
  SamplingOptions options;
  options.max_tokens = 100;
  Rng rng(0);
  const auto free_run = generate(model, {2, 3}, -1, options, rng);
  BOOST_TEST(free_run.size() == 14u);  // max_seq_len 16 - 2 prompt tokens
  const std::int32_t eos = free_run[3];
  const auto stopped = generate(model, {2, 3}, eos, options, rng);
  BOOST_TEST(stopped.back() == eos);
  BOOST_TEST(stopped.size() <= 4u);
}

BOOST_AUTO_TEST_CASE(empty_and_overlong_prompts_are_errors) {
  Model<float> model = random_model("post", 1, 6);
  Rng rng(0);
  BOOST_CHECK_THROW(generate(model, {}, -1, SamplingOptions{}, rng), Error);
  BOOST_CHECK_THROW(generate(model, std::vector<std::int32_t>(16, 1), -1, SamplingOptions{}, rng),
                    Error);
}

BOOST_AUTO_TEST_SUITE_END()
