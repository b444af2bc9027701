// Optimizers and learning-rate schedules against arithmetic written out here in plain
// doubles, following the published algorithms (torch.optim docs), not our code.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "framework/config.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/optimizer_registry.hpp"
#include "optimizers/schedule.hpp"
#include "optimizers/sgd.hpp"
#include "training/run_config.hpp"

using namespace strata;

namespace {

constexpr int kSteps = 3;
constexpr std::size_t kSize = 3;
using Vec = std::array<double, kSize>;

const Vec kInitial = {0.5, -1.0, 2.0};
// One fixed gradient per step (a zero and a sign change included on purpose).
const std::array<Vec, kSteps> kGradients = {
    {{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.3}, {0.2, 0.0, -0.1}}};

Tensor<double> tensor_of(const Vec& values) {
  Tensor<double> t = Tensor<double>::from_shape({kSize});
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

// Runs `optimizer` for kSteps on one parameter with kGradients; returns the value
// after each step.
std::array<Vec, kSteps> run(Optimizer<double>& optimizer, double lr) {
  Parameter<double> p("w", tensor_of(kInitial));
  std::array<Vec, kSteps> out;
  for (int t = 0; t < kSteps; ++t) {
    p.grad = tensor_of(kGradients[t]);
    optimizer.step({&p}, lr);
    std::copy(p.value.begin(), p.value.end(), out[t].begin());
  }
  return out;
}

void expect_close(const std::array<Vec, kSteps>& got, const std::array<Vec, kSteps>& want,
                  double tolerance = 1e-12) {
  for (int t = 0; t < kSteps; ++t)
    for (std::size_t i = 0; i < kSize; ++i)
      BOOST_TEST(std::abs(got[t][i] - want[t][i]) <= tolerance, "step " << t + 1 << " element " << i
                                                                        << ": got " << got[t][i]
                                                                        << ", want " << want[t][i]);
}

// Adam as in Kingma & Ba, Algorithm 1 (bias-corrected m_hat, v_hat), with torch's
// L2 (`l2`) or decoupled (`decoupled`) weight decay.
std::array<Vec, kSteps> adam_by_hand(double lr, double b1, double b2, double eps, double l2,
                                     double decoupled) {
  Vec p = kInitial, m{}, v{};
  std::array<Vec, kSteps> out;
  for (int t = 1; t <= kSteps; ++t) {
    for (std::size_t i = 0; i < kSize; ++i) {
      p[i] = p[i] - lr * decoupled * p[i];
      const double g = kGradients[t - 1][i] + l2 * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(b1, t));
      const double v_hat = v[i] / (1 - std::pow(b2, t));
      p[i] = p[i] - lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    out[t - 1] = p;
  }
  return out;
}

// torch.optim.SGD's documented algorithm (dampening 0).
std::array<Vec, kSteps> sgd_by_hand(double lr, double mu, bool nesterov, double wd) {
  Vec p = kInitial, buf{};
  std::array<Vec, kSteps> out;
  for (int t = 1; t <= kSteps; ++t) {
    for (std::size_t i = 0; i < kSize; ++i) {
      double g = kGradients[t - 1][i] + wd * p[i];
      if (mu != 0) {
        buf[i] = t == 1 ? g : mu * buf[i] + g;
        g = nesterov ? g + mu * buf[i] : buf[i];
      }
      p[i] = p[i] - lr * g;
    }
    out[t - 1] = p;
  }
  return out;
}

}  // namespace

namespace {

// An optimizer whose update does nothing but note the clock value it ran at: the base
// must still tick once per step, in every form of step.
template <class T>
class ClockWatcher : public Optimizer<T> {
 public:
  static constexpr const char* kSummary = "test: changes nothing, notes the clock";
  static Schema schema() { return {integer_key("unused", "0", "a key of its own", 0, 10)}; }
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection&) {
    return std::make_unique<ClockWatcher>();  // reads neither lr nor clip_norm itself
  }
  std::string_view type() const override { return "TestClockWatcher"; }
  std::vector<std::int64_t> seen;  // steps() at each update

 protected:
  void update(const std::vector<Parameter<T>*>&, double) override { seen.push_back(this->steps()); }
};

}  // namespace

STRATA_REGISTER_OPTIMIZER("TestClockWatcher", ClockWatcher);

BOOST_AUTO_TEST_SUITE(optimizers)

BOOST_AUTO_TEST_CASE(the_base_ticks_once_per_step_for_an_optimizer_that_does_nothing) {
  ClockWatcher<double> watcher;
  Parameter<double> a("a", tensor_of(kInitial)), b("b", tensor_of(kInitial));
  const std::vector<Parameter<double>*> both = {&a, &b}, only_a = {&a}, only_b = {&b};
  watcher.step(both, 0.1);
  BOOST_TEST(watcher.steps() == 1);
  a.grad = tensor_of(kGradients[0]);
  watcher.step_scaled_and_zero(both, 0.1, 0.5);
  BOOST_TEST(watcher.steps() == 2);
  BOOST_TEST(a.grad(0) == 0.0);  // the default fused step zeroes the grads
  // In parts: one tick for the step, however many parts and tasks.
  watcher.begin_parts();
  for (const auto* part : {&only_a, &only_b}) {
    const std::size_t tasks = watcher.prepare_part(*part, 0.1, 1.0);
    for (std::size_t i = 0; i < tasks; ++i) watcher.part_task(i);
  }
  BOOST_TEST(watcher.steps() == 3);
  const std::vector<std::int64_t> want = {1, 2, 3, 3};
  BOOST_TEST(watcher.seen == want, boost::test_tools::per_element());
  // No state by default: nothing exported, nothing foreign accepted, the clock restored.
  BOOST_TEST(watcher.state().empty());
  BOOST_CHECK_THROW(watcher.load_state({{"a/m", tensor_of(kInitial)}}, 7), Error);
  BOOST_TEST(watcher.steps() == 3);  // a refused state leaves the clock alone
  watcher.load_state({}, 7);
  BOOST_TEST(watcher.steps() == 7);
}

BOOST_AUTO_TEST_CASE(registered_optimizers_get_the_common_keys_from_the_registry) {
  const OptimizerInfo& info = optimizer_registry().find("TestClockWatcher");
  BOOST_REQUIRE(info.schema.size() == 3u);
  BOOST_TEST(info.schema[0].name == "lr");
  BOOST_TEST(info.schema[1].name == "clip_norm");
  BOOST_TEST(info.schema[2].name == "unused");
  const ConfigNode root = ConfigNode::parse(
      "a: {type: TestClockWatcher, lr: 0.5, clip_norm: 3, unused: 2}\n"
      "b: {type: TestClockWatcher, lr: 0.5, clipnorm: 3}\n",
      "test.yaml");
  auto watcher = make_optimizer<float>(root.get("a"));
  BOOST_TEST(watcher->default_lr() == 0.5);  // read by make_optimizer, not by from_config
  BOOST_TEST(watcher->clip_norm() == 3.0);
  try {
    make_optimizer<float>(root.get("b"));
    BOOST_ERROR("an unknown key was accepted");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("test.yaml:2:") == 0, what);
    BOOST_TEST(what.find("did you mean \"clip_norm\"") != std::string::npos, what);
  }
}

namespace {
template <class T>
struct ListsLr : ClockWatcher<T> {
  static Schema schema() { return {number_key("lr", "0.1", "a second lr", 0)}; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_schema_may_not_repeat_the_common_keys) {
  const std::size_t before = registration_log().errors.size();
  BOOST_TEST(!register_optimizer_at_load<ListsLr>("TestListsLr"));
  BOOST_REQUIRE(registration_log().errors.size() == before + 1);
  BOOST_TEST(registration_log().errors.back() ==
             "optimizer type \"TestListsLr\": schema() lists \"lr\", which every optimizer "
             "has already");
  BOOST_TEST(!optimizer_registry().contains("TestListsLr"));
}

namespace {
template <class T>
struct BuildsNothing : ClockWatcher<T> {
  static Schema schema() { return {}; }
  static std::unique_ptr<Optimizer<T>> from_config(const ConfigSection&) { return nullptr; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_factory_that_returns_nothing_is_an_error) {
  BOOST_REQUIRE(register_optimizer_at_load<BuildsNothing>("TestBuildsNothing"));
  try {
    make_optimizer<float>(ConfigNode::parse("{type: TestBuildsNothing}", "test.yaml"));
    BOOST_ERROR("a null optimizer was returned");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "optimizer type \"TestBuildsNothing\": from_config returned nothing");
  }
}

BOOST_AUTO_TEST_CASE(one_default_learning_rate) {
  // Every optimizer's lr default, the optimizers' own, and the run config's fallback
  // for a phase when neither the phase nor the optimizer gives an lr.
  for (const std::string& type : optimizer_registry().names()) {
    if (type == "TestBuildsNothing") continue;
    auto optimizer = make_optimizer<double>(ConfigNode::parse("{type: " + type + "}", "test.yaml"));
    BOOST_TEST(optimizer->default_lr() == kDefaultLearningRate, type);
  }
  BOOST_TEST(Adam<float>().default_lr() == kDefaultLearningRate);
  BOOST_TEST(AdamW<float>().default_lr() == kDefaultLearningRate);
  BOOST_TEST(SGD<float>().default_lr() == kDefaultLearningRate);
  const std::string phases =
      "model: {}\ntraining:\n  phases: [{name: p, data: d.txt, epochs: 1}]\n";
  const RunConfig config = parse_run_config("optimizer: {type: SGD}\n" + phases, "run.yaml");
  BOOST_TEST(config.phases.at(0).schedule.lr == kDefaultLearningRate);
  const RunConfig given = parse_run_config("optimizer: {type: SGD, lr: 0.02}\n" + phases, "r.yaml");
  BOOST_TEST(given.phases.at(0).schedule.lr == 0.02);
}

BOOST_AUTO_TEST_CASE(adam_matches_hand_computation) {
  Adam<double> adam(0.01, 0.9, 0.999, 1e-8);
  const auto got = run(adam, 0.01);
  expect_close(got, adam_by_hand(0.01, 0.9, 0.999, 1e-8, 0, 0));
  // Bias correction makes the first step exactly lr * g / (|g| + eps) (m_hat = g,
  // v_hat = g^2): a check that does not depend on the formula above. The optimizer's
  // own arithmetic rounds about ten times on the way to the update (m, m_hat, v, v_hat,
  // the square root, + eps, the division, * lr: each at most u = 2^-53 of the update's
  // size, lr), and once more when the update is subtracted from the parameter (u of
  // |p|); this closed form rounds a few times more: |error| <= u (|p0| + |p1|) + 16 u lr.
  // The eps term itself (lr eps / |g|, 1e-9 at |g| = 0.1) is millions of times larger.
  const double u = std::numeric_limits<double>::epsilon() / 2, lr = 0.01, eps = 1e-8;
  for (std::size_t i = 0; i < kSize; ++i) {
    const double g = kGradients[0][i];
    const double want = kInitial[i] - lr * g / (std::abs(g) + eps);
    BOOST_TEST(
        std::abs(got[0][i] - want) <= u * (std::abs(kInitial[i]) + std::abs(want)) + 16 * u * lr,
        "element " << i << ": got " << got[0][i] << ", want " << want);
  }
  BOOST_TEST(adam.steps() == kSteps);
}

BOOST_AUTO_TEST_CASE(adam_l2_weight_decay_matches_hand_computation) {
  Adam<double> adam(0.02, 0.8, 0.99, 1e-6, 0.1);
  expect_close(run(adam, 0.02), adam_by_hand(0.02, 0.8, 0.99, 1e-6, 0.1, 0));
}

BOOST_AUTO_TEST_CASE(adamw_matches_hand_computation) {
  AdamW<double> adamw(0.05, 0.9, 0.999, 1e-8, 0.1);
  const auto got = run(adamw, 0.05);
  expect_close(got, adam_by_hand(0.05, 0.9, 0.999, 1e-8, 0, 0.1));
  // Decoupled decay differs from the L2 form.
  const auto l2 = adam_by_hand(0.05, 0.9, 0.999, 1e-8, 0.1, 0);
  BOOST_TEST(std::abs(got[2][0] - l2[2][0]) > 1e-6);
  BOOST_TEST(adamw.type() == "AdamW");
  BOOST_TEST(AdamW<double>().weight_decay() == 0.01);
}

BOOST_AUTO_TEST_CASE(sgd_plain_matches_hand_computation) {
  SGD<double> sgd(0.1);
  const auto got = run(sgd, 0.1);
  // Written out: p1 = p0 - 0.1 g1, ...
  BOOST_TEST(std::abs(got[0][0] - (0.5 - 0.1 * 0.1)) <= 1e-15);
  BOOST_TEST(std::abs(got[2][1] - (-1.0 - 0.1 * (-0.2 + 0.4 + 0.0))) <= 1e-15);
  expect_close(got, sgd_by_hand(0.1, 0, false, 0));
  BOOST_TEST(sgd.state().empty());  // no velocity without momentum
}

BOOST_AUTO_TEST_CASE(sgd_momentum_matches_hand_computation) {
  SGD<double> sgd(0.1, 0.9);
  const auto got = run(sgd, 0.1);
  expect_close(got, sgd_by_hand(0.1, 0.9, false, 0));
  // Element 0 written out: buf1 = 0.1, buf2 = 0.09 - 0.05 = 0.04, buf3 = 0.036 + 0.2.
  BOOST_TEST(std::abs(got[2][0] - (0.5 - 0.1 * (0.1 + 0.04 + 0.236))) <= 1e-15);
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_matches_hand_computation) {
  SGD<double> sgd(0.1, 0.9, true, 0.01);
  expect_close(run(sgd, 0.1), sgd_by_hand(0.1, 0.9, true, 0.01));
  BOOST_CHECK_THROW(SGD<double>(0.1, 0, true), Error);
}

BOOST_AUTO_TEST_CASE(one_clock_tick_per_step) {
  Parameter<double> a("a", tensor_of(kInitial)), b("b", tensor_of(kInitial));
  a.grad = tensor_of(kGradients[0]);
  b.grad = tensor_of(kGradients[0]);
  Adam<double> adam;
  adam.step({&a, &b}, 1e-3);
  BOOST_TEST(adam.steps() == 1);
  // Both parameters saw t = 1: the same first update.
  for (std::size_t i = 0; i < kSize; ++i) BOOST_TEST(a.value(i) == b.value(i));
  adam.step({&a, &b}, 1e-3);
  BOOST_TEST(adam.steps() == 2);
}

namespace {
// Two steps with optimizer `first`, then its state into `second`, which must
// continue exactly as `first` does (parameters passed in a different order:
// state follows names, not positions).
template <class O>
void expect_state_round_trip(O first, O second, const std::vector<std::string>& keys) {
  Parameter<double> a1("a", tensor_of(kInitial)), b1("b", tensor_of({3.0, -0.5, 0.25}));
  for (int t = 0; t < 2; ++t) {
    a1.grad = tensor_of(kGradients[t]);
    b1.grad = tensor_of(kGradients[2 - t]);
    first.step({&a1, &b1}, 0.01);
  }
  const auto state = first.state();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state) names.push_back(name);
  BOOST_TEST(names == keys, boost::test_tools::per_element());

  Parameter<double> a2("a", a1.value), b2("b", b1.value);
  second.load_state(state, first.steps());
  BOOST_TEST(second.steps() == 2);
  a1.grad = a2.grad = tensor_of(kGradients[2]);
  b1.grad = b2.grad = tensor_of(kGradients[0]);
  first.step({&a1, &b1}, 0.01);
  second.step({&b2, &a2}, 0.01);
  for (std::size_t i = 0; i < kSize; ++i) {
    BOOST_TEST(a1.value(i) == a2.value(i));
    BOOST_TEST(b1.value(i) == b2.value(i));
  }
  BOOST_TEST(second.steps() == 3);
}
}  // namespace

BOOST_AUTO_TEST_CASE(adam_state_round_trip_by_name) {
  expect_state_round_trip(Adam<double>(), Adam<double>(), {"a/m", "a/v", "b/m", "b/v"});
}

BOOST_AUTO_TEST_CASE(adamw_state_round_trip_by_name) {
  expect_state_round_trip(AdamW<double>(), AdamW<double>(), {"a/m", "a/v", "b/m", "b/v"});
}

BOOST_AUTO_TEST_CASE(sgd_state_round_trip_by_name) {
  expect_state_round_trip(SGD<double>(0.1, 0.9), SGD<double>(0.1, 0.9),
                          {"a/velocity", "b/velocity"});
}

BOOST_AUTO_TEST_CASE(load_state_rejects_foreign_entries) {
  Adam<double> adam;
  BOOST_CHECK_THROW(adam.load_state({{"a/velocity", tensor_of(kInitial)}}, 1), Error);
  BOOST_CHECK_THROW(adam.load_state({{"a/m", tensor_of(kInitial)}}, 1), Error);  // no /v
  SGD<double> sgd(0.1, 0.9);
  BOOST_CHECK_THROW(sgd.load_state({{"a/m", tensor_of(kInitial)}}, 1), Error);
  // State whose shape does not match the parameter of that name.
  sgd.load_state({{"a/velocity", Tensor<double>::from_shape({2})}}, 1);
  Parameter<double> a("a", tensor_of(kInitial));
  BOOST_CHECK_THROW(sgd.step({&a}, 0.1), Error);
}

BOOST_AUTO_TEST_CASE(float_instantiation_tracks_double) {
  Adam<float> adam(0.01);
  Parameter<float> p("w", Tensor<float>{0.5f, -1.0f, 2.0f});
  const auto want = adam_by_hand(0.01, 0.9, 0.999, 1e-8, 0, 0);
  for (int t = 0; t < kSteps; ++t) {
    for (std::size_t i = 0; i < kSize; ++i) p.grad(i) = float(kGradients[t][i]);
    adam.step({&p}, 0.01);
  }
  // Each float step rounds the parameter once (u |p|, u = 2^-24, |p| <= |p0| + steps * lr)
  // and the update about ten times (as in adam_matches_hand_computation: 16 u lr, the
  // gradient's own rounding to float included); the errors of the steps add up.
  const double u = std::numeric_limits<float>::epsilon() / 2;
  for (std::size_t i = 0; i < kSize; ++i) {
    const double size = std::abs(kInitial[i]) + kSteps * 0.01;
    BOOST_TEST(std::abs(p.value(i) - want[2][i]) <= kSteps * (2 * u * size + 16 * u * 0.01),
               "element " << i);
  }
}

BOOST_AUTO_TEST_CASE(make_optimizer_reads_config) {
  const ConfigNode root = ConfigNode::parse(
      "optimizer: {type: Adam, lr: 5.0e-4, betas: [0.8, 0.99], eps: 1.0e-6, clip_norm: 5.0}\n"
      "sgd: {type: SGD, momentum: 0.9, nesterov: true}\n"
      "adamw: {type: AdamW}\n",
      "test.yaml");
  auto adam = make_optimizer<double>(root.get("optimizer"));
  BOOST_TEST(adam->type() == "Adam");
  BOOST_TEST(adam->default_lr() == 5e-4);
  BOOST_TEST(adam->clip_norm() == 5.0);
  const auto& typed = dynamic_cast<const Adam<double>&>(*adam);
  BOOST_TEST(typed.beta1() == 0.8);
  BOOST_TEST(typed.beta2() == 0.99);
  BOOST_TEST(typed.eps() == 1e-6);
  BOOST_TEST(typed.weight_decay() == 0.0);

  auto sgd = make_optimizer<float>(root.get("sgd"));
  const auto& typed_sgd = dynamic_cast<const SGD<float>&>(*sgd);
  BOOST_TEST(typed_sgd.momentum() == 0.9);
  BOOST_TEST(typed_sgd.nesterov());
  BOOST_TEST(sgd->default_lr() == 1e-3);
  BOOST_TEST(sgd->clip_norm() == 0.0);

  auto adamw = make_optimizer<double>(root.get("adamw"));
  BOOST_TEST(dynamic_cast<const AdamW<double>&>(*adamw).weight_decay() == 0.01);
}

BOOST_AUTO_TEST_CASE(constant_schedule) {
  const LrSchedule schedule = parse_schedule(ConfigNode(), 3e-4, "training.phases[0].schedule");
  BOOST_TEST((schedule.kind == LrSchedule::Kind::constant));
  BOOST_TEST(schedule.at(0, 100) == 3e-4);
  BOOST_TEST(schedule.at(99, 100) == 3e-4);
  const LrSchedule explicit_constant =
      parse_schedule(ConfigNode::parse("{type: constant}", "test.yaml"), 2e-3, "schedule");
  BOOST_TEST(explicit_constant.at(50, 100) == 2e-3);
}

BOOST_AUTO_TEST_CASE(warmup_cosine_schedule) {
  const LrSchedule s = parse_schedule(
      ConfigNode::parse("{type: warmup_cosine, warmup: 10, min_lr: 1.0e-4}", "test.yaml"), 1e-3,
      "schedule");
  BOOST_TEST((s.kind == LrSchedule::Kind::warmup_cosine));
  BOOST_TEST(s.warmup == 10);
  BOOST_TEST(s.min_lr == 1e-4);
  // 77 steps: warmup 0..9, cosine over steps 10..76 (66 intervals).
  const std::int64_t total = 77;
  BOOST_TEST(s.at(0, total) == 0.0);
  BOOST_TEST(std::abs(s.at(5, total) - 0.5e-3) <= 1e-15);  // mid-warmup: half of lr
  BOOST_TEST(std::abs(s.at(10, total) - 1e-3) <= 1e-15);   // end of warmup: lr
  // A third of the decay: cos(pi/3) = 1/2, so min_lr + (lr - min_lr) * 3/4.
  BOOST_TEST(std::abs(s.at(32, total) - (1e-4 + 0.9e-3 * 0.75)) <= 1e-15);
  BOOST_TEST(std::abs(s.at(76, total) - 1e-4) <= 1e-15);  // last step: min_lr
}

BOOST_AUTO_TEST_SUITE_END()
