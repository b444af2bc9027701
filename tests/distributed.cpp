// The MPI group and the bucketed gradient all-reduce (framework/distributed.hpp).
//
// CTest runs this suite twice: alone (a group of one: every call an identity) and, when
// Strata was built with MPI, as mpi_distributed under `mpirun -np 2`, where the sums
// really cross processes. The values summed are small integers, exact in float, so the
// sums must be exact whatever order MPI adds them in.
#include "framework/distributed.hpp"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <memory>

#include "framework/config.hpp"
#include "framework/errors.hpp"
#include "framework/model.hpp"
#include "test_support.hpp"
#include "training/data_parallel.hpp"

namespace strata {
namespace {

// values i, gradients value + i.
std::unique_ptr<Parameter<float>> make_parameter(const std::string& name, std::size_t n,
                                                 float value) {
  Tensor<float> initial = Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) initial(i) = float(i);
  auto p = std::make_unique<Parameter<float>>(name, std::move(initial));
  for (std::size_t i = 0; i < n; ++i) p->grad(i) = value + float(i);
  return p;
}

// MPI must be finalised before the process exits, or mpirun reports the job as failed.
struct FinalizeAtExit {
  ~FinalizeAtExit() { Distributed::finalize(); }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(FinalizeAtExit);

BOOST_AUTO_TEST_SUITE(distributed)

BOOST_AUTO_TEST_CASE(sum_adds_every_rank) {
  Distributed& world = Distributed::world();
  double values[2] = {double(world.rank() + 1), 1.0};
  world.sum(values, 2);
  const double n = world.size();
  BOOST_TEST(values[0] == n * (n + 1) / 2);
  BOOST_TEST(values[1] == n);
}

// Gradients of rank r are (r + 1) * 1000 + i: after finish() each is the sum over ranks,
// in every bucket (several here: 64-byte buckets over groups of 7, 40 and 3 floats).
BOOST_AUTO_TEST_CASE(buckets_sum_every_gradient) {
  Distributed& world = Distributed::world();
  const float mine = float(world.rank() + 1) * 1000;
  std::vector<std::unique_ptr<Parameter<float>>> params;
  params.push_back(make_parameter("a", 7, mine));
  params.push_back(make_parameter("b", 40, mine));
  params.push_back(make_parameter("c", 3, mine));
  params.push_back(make_parameter("d", 5, mine));
  const std::vector<std::vector<Parameter<float>*>> groups = {
      {params[3].get(), params[2].get()}, {params[1].get()}, {params[0].get()}};
  GradientBuckets buckets(groups, 64);
  BOOST_TEST(buckets.buckets() == 2u);  // {d, c} = 32 bytes + b: over 64; then a
  BOOST_TEST(buckets.bytes_per_step() == 55 * sizeof(float));
  for (int step = 0; step < 2; ++step) {  // the buckets are reused step after step
    for (const auto& group : groups) buckets.completed(group);
    buckets.finish();
    const double n = world.size();
    for (const auto& p : params)
      for (std::size_t i = 0; i < p->grad.size(); ++i) {
        // sum over r of ((r + 1) * 1000 + i) * n^step: step 1 sums step 0's sums again
        const double expected = (1000 * n * (n + 1) / 2 + n * double(i)) * std::pow(n, step);
        BOOST_TEST(double(p->grad(i)) == expected);
      }
  }
}

BOOST_AUTO_TEST_CASE(buckets_refuse_groups_out_of_order) {
  auto a = make_parameter("a", 2, 0), b = make_parameter("b", 2, 0);
  GradientBuckets buckets({{a.get()}, {b.get()}}, 1 << 20);
  BOOST_CHECK_THROW(buckets.completed({b.get()}), Error);
}

// A rank without rows in a step reports every group at once with zero gradients: the
// sum is then the other ranks' alone.
BOOST_AUTO_TEST_CASE(complete_all_contributes_zeros) {
  Distributed& world = Distributed::world();
  auto a = make_parameter("a", 3, 5);
  if (world.rank() != 0) a->grad.fill(0);
  GradientBuckets buckets({{a.get()}}, 1 << 20);
  if (world.rank() == 0)
    buckets.completed({a.get()});
  else
    buckets.complete_all();
  buckets.finish();
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(a->grad(i) == 5.0f + float(i));
}

BOOST_AUTO_TEST_CASE(check_same_names_the_rank_that_differs) {
  Distributed& world = Distributed::world();
  BOOST_CHECK_NO_THROW(world.check_same(42, "the configs"));
  if (!world.parallel()) return;  // one rank cannot differ from itself
  try {
    world.check_same(world.rank() == 1 ? 43 : 42, "the configs");
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_TEST_INFO(what);
    BOOST_TEST(what.find("the configs differ between ranks: rank 0 has 000000000000002a, rank 1 "
                         "(000000000000002b)") == 0);
  }
}

BOOST_AUTO_TEST_CASE(parameter_hash_sees_one_bit) {
  auto a = make_parameter("a", 4, 0);
  const std::uint64_t before = hash_parameters({a.get()});
  BOOST_TEST(hash_parameters({a.get()}) == before);
  a->value(2) = std::nextafter(a->value(2), 10.0f);
  BOOST_TEST(hash_parameters({a.get()}) != before);
  a->value(2) = 2;
  a->name = "b";
  BOOST_TEST(hash_parameters({a.get()}) != before);
}

// The periodic check of a data-parallel run: the same model on every rank passes; one
// float one ulp off on rank 1 (a corrupted sum or memory) stops every rank with an
// error naming the step and the rank.
BOOST_AUTO_TEST_CASE(parameter_drift_on_one_rank_is_an_error) {
  Rng rng(5);
  const ConfigNode root = ConfigNode::parse(strata::testing::tiny_model_yaml(10), "t.yaml");
  Model<float> model = build_model<float>(root.get("model"), 10, rng);
  DataParallel parallel(model);
  BOOST_CHECK_NO_THROW(parallel.check_parameters(100));
  if (!Distributed::world().parallel()) return;  // one rank cannot drift from itself
  if (Distributed::world().rank() == 1) {
    float& w = model.parameters().back()->value(0);
    w = std::nextafter(w, 1.0f);
  }
  try {
    parallel.check_parameters(200);
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_TEST_INFO(what);
    BOOST_TEST(what.find("the parameters after step 200 differ between ranks: rank 0 has ") == 0);
    BOOST_TEST(what.find("the ranks no longer train the same model") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace strata
