// Lion's tests: three steps against the paper's update written out here in plain
// doubles, the state round trip, and the registered optimizer built from a config.
#define BOOST_TEST_MODULE lion
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "lion.hpp"
#include "optimizers/optimizer_registry.hpp"

using namespace strata;

namespace {

using Vec = std::vector<double>;
const Vec kInitial = {0.5, -1.0, 2.0};
// One gradient per step, chosen so that c is zero (element 2 at steps 1 and 2) and
// has the momentum's sign against the gradient's (element 0 at step 2: g < 0, c > 0;
// with m updated before c, as Adam orders it, c would be < 0 there).
const std::vector<Vec> kGradients = {{0.1, -0.2, 0.0}, {-0.0085, 0.4, 0.0}, {0.0, -0.1, 0.3}};

Tensor<double> tensor_of(const Vec& values) {
  Tensor<double> t = Tensor<double>::from_shape({values.size()});
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

// The update as the paper's Algorithm 2 states it.
struct ByHand {
  Vec p = kInitial, m = Vec(3, 0.0);
  void step(const Vec& g, double lr, double b1, double b2, double wd) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double c = b1 * m[i] + (1 - b1) * g[i];
      const double sign = c > 0 ? 1 : (c < 0 ? -1 : 0);
      p[i] = p[i] - lr * (sign + wd * p[i]);
      m[i] = b2 * m[i] + (1 - b2) * g[i];
    }
  }
};

// Each step rounds each entry a few times at the scale of |p| + lr (p), of |g| (m).
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kTolerance = 8 * kEps * (2.0 + 3 * 0.1);
constexpr double kMomentTolerance = 8 * kEps * 0.4;

}  // namespace

BOOST_AUTO_TEST_CASE(three_steps_match_the_paper) {
  example::Lion<double> lion(0.1, 0.9, 0.99);
  Parameter<double> p("w", tensor_of(kInitial));
  ByHand want;
  for (const Vec& g : kGradients) {
    p.grad = tensor_of(g);
    lion.step({&p}, 0.1);
    want.step(g, 0.1, 0.9, 0.99, 0);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(std::abs(p.value(i) - want.p[i]) <= kTolerance);
  }
  // Written out: each entry moves by lr against sign(c), or not at all when c = 0.
  // c1 = (0.01, -0.02, 0); c2 = (0.00005, 0.0382, 0); c3 = (0.0008145, -0.008182, 0.03).
  const Vec final_p = {0.2, -0.9, 1.9};
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(std::abs(p.value(i) - final_p[i]) <= kTolerance);
  BOOST_TEST(lion.steps() == 3);
  // The momentum: m3 = 0.99 m2 + 0.01 g3 with m2 = (0.000905, 0.00202, 0).
  const Tensor<double> m = lion.state().at("w/m");
  const Vec final_m = {0.00089595, 0.0009998, 0.003};
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(std::abs(m(i) - final_m[i]) <= kMomentTolerance);
}

BOOST_AUTO_TEST_CASE(decoupled_weight_decay_matches_the_paper) {
  example::Lion<double> lion(0.1, 0.8, 0.95, 0.5);
  Parameter<double> p("w", tensor_of(kInitial));
  ByHand want;
  for (const Vec& g : kGradients) {
    p.grad = tensor_of(g);
    lion.step({&p}, 0.1);
    want.step(g, 0.1, 0.8, 0.95, 0.5);
  }
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(std::abs(p.value(i) - want.p[i]) <= kTolerance);
}

BOOST_AUTO_TEST_CASE(state_round_trip_continues_exactly) {
  example::Lion<double> first(0.1), second(0.1);
  Parameter<double> a("w", tensor_of(kInitial));
  for (int t = 0; t < 2; ++t) {
    a.grad = tensor_of(kGradients[t]);
    first.step({&a}, 0.1);
  }
  second.load_state(first.state(), first.steps());
  BOOST_TEST(second.steps() == 2);
  Parameter<double> b("w", a.value);
  a.grad = b.grad = tensor_of(kGradients[2]);
  first.step({&a}, 0.1);
  second.step({&b}, 0.1);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(a.value(i) == b.value(i));
  BOOST_CHECK_THROW(second.load_state({{"w/velocity", tensor_of(kInitial)}}, 1), Error);
}

BOOST_AUTO_TEST_CASE(registered_and_built_from_a_config) {
  // Linking this library registered the optimizer, as loading it as a plugin does.
  BOOST_TEST(optimizer_registry().contains("Lion"));
  const ConfigNode config = ConfigNode::parse(
      "optimizer: {type: Lion, lr: 3.0e-4, betas: [0.95, 0.98], clip_norm: 1.0}\n"
      "typo: {type: Lion, beta: [0.9, 0.99]}\n",
      "run.yaml");
  auto lion = make_optimizer<float>(config.get("optimizer"));
  BOOST_TEST(lion->type() == "Lion");
  BOOST_TEST(lion->default_lr() == 3e-4);
  BOOST_TEST(lion->clip_norm() == 1.0);
  // A misspelt key is refused with did-you-mean, like any built-in optimizer's.
  BOOST_CHECK_EXCEPTION(
      make_optimizer<float>(config.get("typo")), ConfigError, [](const ConfigError& e) {
        return std::string(e.what()).find("did you mean \"betas\"") != std::string::npos;
      });
}
