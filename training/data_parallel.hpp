// One training step split across the ranks of Distributed::world() (data parallel).
//
// The config's batch is the global batch: every rank draws the same epoch order (same
// seed, same shuffle) and builds and runs only its rows of each batch, rank r the
// contiguous rows [r * B / N, (r + 1) * B / N) (tasks/batch.hpp rank_rows). A corpus
// phase's rank reads only its rows' windows from the memory-mapped token file; an
// example phase's rank pads only its rows, to the whole batch's length, which, like the
// global count of targets, it takes from the sequences' lengths.
//
// The objective is the global one, the mean over every non-padding target of the global
// batch: each rank scales its loss gradient by its share of the targets (local /
// global), and the sum over ranks of the gradients is then the gradient 1 rank computes
// on the whole batch, up to the order of the float sums. The sums run in a few large
// buckets started during backward (GradientBuckets); the clipping norm is taken after
// them, over the summed gradients, in the model's group order, as in a single process.
// A rank without rows in a step (a batch smaller than the rank count) adds zeros.
//
// A step of several batches (`accumulate: K`) runs the first K-1 without communication
// (their gradients add up locally, as PyTorch DDP's no_sync) and sums during the K-th's
// backward; each batch's gradient is scaled by the rank's targets in it over the whole
// step's (every batch, every rank).
//
// Every rank holds the same parameters: they start from the same seed (checked with the
// config and the data at start) and apply the same summed gradients; a hash of them is
// compared every `check_every` steps, and a drift is an error.
//
// Limitation: a layer's random draws (Dropout) are taken per rank for its own rows, so
// with dropout the masks differ from a single process's (the run is valid, not equal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/distributed.hpp"
#include "framework/model.hpp"
#include "training/trainer.hpp"

namespace strata {

// The step's figures summed over the ranks.
struct StepTotals {
  double objective_sum = 0;  // sum over the global batch's items of their loss
  BatchLoss loss;            // sum, examples and items of the global batch (mean: global)
  bool stop = false;         // some rank was asked to stop (a signal)
  double wait_seconds = 0;   // spent waiting for the sums after backward
};

class DataParallel {
 public:
  static constexpr std::size_t kBucketBytes = 4 << 20;
  static constexpr std::int64_t kCheckEvery = 100;

  explicit DataParallel(Model<float>& model, std::size_t bucket_bytes = kBucketBytes);

  bool active() const { return Distributed::world().parallel(); }
  int rank() const { return Distributed::world().rank(); }

  // The factor a rank's loss gradient of a batch takes: its items of the batch over the
  // step's items on every rank (exactly 1 when it holds them all).
  static float share(const BatchLoss& local, double step_items);
  // After each batch's forward: adds this rank's figures of it (loss, examples, items).
  void add_batch(const BatchLoss& local);
  // Before the step's last backward: starts summing the step's figures and `stop`.
  void begin_step(bool stop);
  // A rank with no rows in the step's last batch: its gradients (zero, or its earlier
  // batches') go to the sums at once.
  void no_rows() { buckets_.complete_all(); }
  // Model::backward's completed hook.
  void completed(const std::vector<Parameter<float>*>& group) { buckets_.completed(group); }
  // After backward: waits for the sums; the gradients are then the global ones.
  StepTotals finish();
  // The summed gradients' squared L2 norm, in the model's group order.
  double squared_grad_norm() const;

  // At start: the config, the data and the initial parameters must be rank 0's.
  void check_start(const std::string& config_text, std::uint64_t data_hash);
  // Every check_every steps (and at a checkpoint): the parameters must be rank 0's.
  void check_parameters(std::int64_t step);

  std::size_t bytes_per_step() const { return buckets_.bytes_per_step(); }

 private:
  static std::vector<std::vector<Parameter<float>*>> groups_in_backward_order(
      const Model<float>& model);

  Model<float>& model_;
  std::vector<std::vector<Parameter<float>*>> groups_;
  GradientBuckets buckets_;
  double figures_[5] = {};  // the step's objective sum, loss sum, examples, items, stop
};

}  // namespace strata
