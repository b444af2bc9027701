// A language model's loss on any text (tasks/lm_evaluation.hpp): windows that predict
// every token once, and the mean loss per token against a reference computed from the
// definition, one window at a time.
#include "tasks/lm_evaluation.hpp"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "float_bounds.hpp"
#include "framework/model.hpp"
#include "test_support.hpp"

using namespace strata;

namespace {

constexpr int kVocab = 20;

Model<float> random_model(std::uint64_t seed) {
  Rng rng(seed);
  const ConfigNode root =
      ConfigNode::parse(strata::testing::tiny_model_yaml(kVocab, "pre", 2), "t.yaml");
  return build_model<float>(root.get("model"), kVocab, rng);
}

std::vector<std::int32_t> random_ids(std::size_t n, Rng& rng) {
  std::vector<std::int32_t> ids(n);
  for (auto& id : ids) id = std::int32_t(1 + rng.below(kVocab - 1));
  return ids;
}

// The reference: each window run alone (batch 1, no padding), -log softmax of the
// target from the logits in long double. `magnitude` receives the largest |logit|.
TokenLoss reference_loss(Model<float>& model, const std::vector<std::vector<std::int32_t>>& texts,
                         double& magnitude) {
  TokenLoss total;
  for (const auto& ids : texts)
    for (const auto& w : prediction_windows(ids, std::size_t(model.max_seq_len))) {
      Tensor<float> input = Tensor<float>::from_shape({1, w.size() - 1});
      std::copy(w.begin(), w.end() - 1, input.begin());
      const Tensor<float>& logits = model.forward(input, Mode::eval);
      for (std::size_t t = 0; t + 1 < w.size(); ++t) {
        const float* row = logits.data() + t * kVocab;
        magnitude = std::max(magnitude, strata::testing::row_magnitude(row, kVocab));
        long double z = 0;
        for (int v = 0; v < kVocab; ++v) z += std::exp((long double)row[v]);
        total.sum += double(std::log(z) - (long double)row[w[t + 1]]);
        ++total.tokens;
      }
    }
  return total;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lm_evaluation)

// Windows of max_len + 1 tokens overlapping by one: every token after the first is a
// target exactly once, and no window is shorter than 2 tokens.
BOOST_AUTO_TEST_CASE(windows_predict_every_token_once) {
  for (std::size_t n : {0u, 1u, 2u, 5u, 6u, 9u, 10u, 11u, 23u}) {
    std::vector<std::int32_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = std::int32_t(i);
    std::vector<std::int32_t> targets;
    std::int32_t expected_first = 0;
    for (const auto& w : prediction_windows(ids, 4)) {
      BOOST_TEST(w.size() >= 2u);
      BOOST_TEST(w.size() <= 5u);
      BOOST_TEST(w.front() == expected_first);  // starts at the previous window's last token
      expected_first = w.back();
      targets.insert(targets.end(), w.begin() + 1, w.end());
    }
    std::vector<std::int32_t> want;
    for (std::size_t i = 1; i < n; ++i) want.push_back(std::int32_t(i));
    BOOST_TEST(targets == want, "n = " << n);
  }
  BOOST_CHECK_THROW(prediction_windows({1, 2}, 0), Error);
}

// Texts shorter than, equal to and several times longer than the context, in batches
// of 1, 3 and 16 rows (padded), against the window-by-window reference. The two differ
// in summation order only: per token, the loss moves by at most twice the logits' error
// (-log softmax is 2-Lipschitz in the largest change of a logit), and that is the
// reordering bound of the path through the model plus the vocabulary's sum.
BOOST_AUTO_TEST_CASE(mean_loss_per_token_matches_the_definition) {
  Model<float> model = random_model(11);
  Rng rng(5);
  std::vector<std::vector<std::int32_t>> texts;
  for (std::size_t n : {1u, 2u, 7u, 16u, 17u, 18u, 40u, 100u}) texts.push_back(random_ids(n, rng));
  double magnitude = 0;
  const TokenLoss want = reference_loss(model, texts, magnitude);
  BOOST_TEST(want.tokens == 0u + 1 + 6 + 15 + 16 + 17 + 39 + 99);
  const std::size_t path = strata::testing::transformer_path_length(2, 8, 2, 16, 16) + kVocab;
  const double bound = 2 * strata::testing::reordering_bound<float>(path, magnitude);
  for (std::size_t batch : {1u, 3u, 16u}) {
    const TokenLoss got = language_model_loss(model, texts, 0, batch);
    BOOST_TEST(got.tokens == want.tokens);
    BOOST_TEST(got.texts == 7u);  // the 1-token text predicts nothing
    const double error = std::abs(got.mean() - want.mean());
    BOOST_TEST_MESSAGE("batch " << batch << ": mean " << got.mean() << " vs " << want.mean()
                                << ", error " << error << " (bound " << bound << ")");
    BOOST_TEST(error <= bound);
    BOOST_TEST(got.perplexity() == std::exp(got.mean()));
  }
  // Nothing to predict: zero tokens, no division by zero.
  const TokenLoss none = language_model_loss(model, {{3}, {}}, 0);
  BOOST_TEST(none.tokens == 0u);
  BOOST_TEST(none.mean() == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
