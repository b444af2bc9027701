// Gradient clipping: the threshold itself (a norm equal to clip_norm is left alone, one
// just above it is scaled), and a training step with clip_norm updates the parameters
// by the clipped gradient, not the raw one.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <sstream>

#include "framework/clip.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "training/trainer.hpp"

using namespace strata;
using strata::testing::TempDir;

namespace {

// Gradients (3, 4) and (12): global norm 13, exactly (169 is exact, so is its root).
std::vector<double> clipped_gradients(double max_norm, double* norm_out) {
  Parameter<double> a("a", Tensor<double>{0.0, 0.0}), b("b", Tensor<double>{0.0});
  a.grad = Tensor<double>{3.0, 4.0};
  b.grad = Tensor<double>{12.0};
  *norm_out = clip_grad_norm<double>({&a, &b}, max_norm);
  return {a.grad(0), a.grad(1), b.grad(0)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clipping)

// framework/clip.hpp: scale only when the norm exceeds max_norm (strictly), then by
// max_norm / (norm + 1e-6), as PyTorch's clip_grad_norm_ does above the threshold.
BOOST_AUTO_TEST_CASE(threshold_is_strict) {
  const double below = std::nextafter(13.0, 0.0), above = std::nextafter(13.0, 100.0);
  double norm = 0;
  // At the threshold and under it: untouched, bit for bit.
  for (double max_norm : {13.0, above, 100.0}) {
    BOOST_TEST(clipped_gradients(max_norm, &norm) == (std::vector<double>{3.0, 4.0, 12.0}),
               "max_norm " << max_norm);
    BOOST_TEST(norm == 13.0);
    BOOST_TEST(clip_scale<double>(13.0, max_norm) == 1.0);
  }
  // Just over it (max_norm one ulp below the norm) and well over it: scaled.
  for (double max_norm : {below, 6.5}) {
    const double scale = max_norm / (13.0 + 1e-6);
    BOOST_TEST(clip_scale<double>(13.0, max_norm) == scale);
    const std::vector<double> g = clipped_gradients(max_norm, &norm);
    BOOST_TEST(norm == 13.0);  // the norm before clipping
    const double want[] = {3.0 * scale, 4.0 * scale, 12.0 * scale};
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(g[i] == want[i], "max_norm " << max_norm);
  }
  // 0 (and anything not positive) means no clipping at all.
  BOOST_TEST(clip_scale<double>(1e30, 0.0) == 1.0);
}

namespace {

const char* kSentences = "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\"]";

// One SGD step (no momentum: the update is -lr * gradient) on `data` with `clip`.
std::vector<double> parameters_after_one_step(const std::string& data, const std::string& clip,
                                              std::vector<double>* before) {
  const std::string yaml =
      "seed: 11\n"
      "model:\n"
      "  max_seq_len: 16\n"
      "  layers:\n"
      "    - {type: Embedding, dim: 8}\n"
      "    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 8, hidden: 16}\n"
      "    - {type: OutputProjection}\n"
      "optimizer: {type: SGD, lr: 0.5, clip_norm: " +
      clip +
      "}\n"
      "training:\n"
      "  phases:\n"
      "    - {name: facts, data: " +
      data + ", epochs: 1, batch: 2}\n";
  LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "clip.yaml"));
  auto values = [&] {
    std::vector<double> out;
    for (Parameter<float>* p : lm.model.parameters())
      out.insert(out.end(), p->value.begin(), p->value.end());
    return out;
  };
  if (before) *before = values();
  auto optimizer = make_optimizer<float>(lm.config.optimizer);
  TrainOptions options;
  options.stop_after_steps = 1;
  train(lm, *optimizer, options);
  return values();
}

double norm2(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

}  // namespace

// The raw gradient comes from an unclipped run: delta = -lr g, so |g| = |delta| / lr.
// A run with clip_norm = |g| / 4 must move the parameters by delta * s, s = clip_norm /
// (|g| + 1e-6). Float error: each stored parameter is rounded once (u |p| each, u =
// 2^-24), lr * s * g adds a few u |delta|, and |g| read back from delta carries the
// same relative error into s; in norm: |delta_c - s delta_u| <= 8 u (|p| + |delta_u|).
BOOST_AUTO_TEST_CASE(training_step_applies_clip_norm) {
  TempDir dir("clip");
  const std::string data = dir.write("facts.json", kSentences);
  const double lr = 0.5, u = std::numeric_limits<float>::epsilon() / 2;
  std::vector<double> p0;
  const std::vector<double> raw = parameters_after_one_step(data, "0", &p0);
  std::vector<double> delta_u(p0.size());
  for (std::size_t i = 0; i < p0.size(); ++i) delta_u[i] = raw[i] - p0[i];
  const double g_norm = norm2(delta_u) / lr;
  BOOST_REQUIRE(g_norm > 0);
  const double clip = g_norm / 4;
  std::ostringstream clip_text;
  clip_text.precision(17);
  clip_text << clip;
  const std::vector<double> clipped = parameters_after_one_step(data, clip_text.str(), nullptr);
  const double s = clip / (g_norm + 1e-6);
  std::vector<double> miss(p0.size());
  for (std::size_t i = 0; i < p0.size(); ++i) miss[i] = (clipped[i] - p0[i]) - s * delta_u[i];
  const double bound = 8 * u * (norm2(p0) + norm2(delta_u));
  BOOST_TEST_MESSAGE("gradient norm " << g_norm << ", clip " << clip << ": |delta_c - s delta_u| "
                                      << norm2(miss) << ", bound " << bound);
  BOOST_TEST(norm2(miss) <= bound);
  // The unclipped step moved 4x as far (what a trainer ignoring clip_norm would give).
  BOOST_TEST(norm2(delta_u) * s > 100 * bound);
}

BOOST_AUTO_TEST_SUITE_END()
