#include "training/data_parallel.hpp"

#include <algorithm>

#include "framework/clip.hpp"
#include "framework/errors.hpp"

namespace strata {

// Model::backward reports layer i's first-used parameters right after layer i's
// backward, last layer first; layers that use none report nothing.
std::vector<std::vector<Parameter<float>*>> DataParallel::groups_in_backward_order(
    const Model<float>& model) {
  std::vector<std::vector<Parameter<float>*>> groups;
  for (std::size_t i = model.layers().size(); i-- > 0;)
    if (!model.parameters_first_used_by(i).empty())
      groups.push_back(model.parameters_first_used_by(i));
  return groups;
}

DataParallel::DataParallel(Model<float>& model, std::size_t bucket_bytes)
    : model_(model),
      groups_(groups_in_backward_order(model)),
      buckets_(active() ? groups_ : decltype(groups_){}, bucket_bytes) {}

float DataParallel::share(const BatchLoss& local, double step_items) {
  // d(global mean)/d(output) = (local items / step items) * d(local mean)/d(output).
  return double(local.items) == step_items ? 1.0f : float(double(local.items) / step_items);
}

void DataParallel::add_batch(const BatchLoss& local) {
  figures_[0] += local.examples ? local.mean * double(local.items) : 0.0;
  figures_[1] += local.sum;
  figures_[2] += double(local.examples);
  figures_[3] += double(local.items);
}

void DataParallel::begin_step(bool stop) {
  figures_[4] = stop ? 1 : 0;
  Distributed::world().start_sum(figures_, 5);
}

StepTotals DataParallel::finish() {
  StepTotals totals;
  totals.wait_seconds = buckets_.finish();  // waits for the figures too
  totals.objective_sum = figures_[0];
  totals.loss.sum = figures_[1];
  totals.loss.examples = std::size_t(figures_[2]);
  totals.loss.items = std::size_t(figures_[3]);
  totals.loss.batch_items = totals.loss.items;
  totals.loss.mean = figures_[0] / figures_[3];
  totals.stop = figures_[4] > 0;
  std::fill(std::begin(figures_), std::end(figures_), 0.0);  // the next step adds from zero
  return totals;
}

double DataParallel::squared_grad_norm() const {
  double sum = 0;
  for (const auto& group : groups_) sum += squared_grad_sum(group);
  return sum;
}

void DataParallel::check_start(const std::string& config_text, std::uint64_t data_hash) {
  Distributed& world = Distributed::world();
  const std::string hint = ": every rank must start with the same arguments and files";
  try {
    world.check_same(fnv1a(config_text.data(), config_text.size()), "the configs");
    world.check_same(data_hash, "the training data");
    world.check_same(hash_parameters(model_.parameters()), "the initial parameters");
  } catch (const Error& e) {
    throw Error(e.what() + hint);
  }
}

void DataParallel::check_parameters(std::int64_t step) {
  try {
    Distributed::world().check_same(hash_parameters(model_.parameters()),
                                    "the parameters after step " + std::to_string(step));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) +
                ": the ranks no longer train the same model (an MPI sum that differs between "
                "ranks, or a rank's memory corrupted)");
  }
}

}  // namespace strata
