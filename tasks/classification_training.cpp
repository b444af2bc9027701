// train(Classifier&, ...): the run loop (training/trainer.hpp) over batches of feature rows.
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>
#include <sstream>

#include "framework/files.hpp"
#include "framework/loss.hpp"
#include "tasks/classification.hpp"
#include "training/training_state.hpp"

namespace strata {

namespace {

class ClassifierTask : public TrainingTask {
 public:
  explicit ClassifierTask(Classifier& c) : c_(c) {}

  const RunConfig& config() const override { return c_.config; }
  Model<float>& model() override { return c_.model; }
  Rng& rng() override { return c_.rng; }

  // The rows split by the seed; the fingerprint is of the rows trained on.
  std::vector<DataFingerprint> load_data() override {
    data_ = load_classification_data(c_.task, c_.config.seed);
    std::vector<std::string> rows;
    for (std::size_t r = 0; r < data_.train.rows(); ++r) {
      std::string bytes(
          reinterpret_cast<const char*>(data_.train.x.data() + r * data_.train.features),
          data_.train.features * sizeof(float));
      bytes.append(reinterpret_cast<const char*>(&data_.train.y[r]), sizeof(std::int32_t));
      rows.push_back(std::move(bytes));
    }
    return {fingerprint_data("task", c_.task.data, rows)};
  }

  std::size_t batches_per_epoch(std::size_t p) const override {
    const std::size_t batch = c_.config.phases[p].batch;
    return (data_.train.rows() + batch - 1) / batch;
  }

  // The epoch's row order.
  void begin_epoch(std::size_t p, Rng* shuffle) override {
    batch_ = c_.config.phases[p].batch;
    order_.resize(data_.train.rows());
    std::iota(order_.begin(), order_.end(), std::size_t(0));
    if (shuffle) shuffle->shuffle(order_.begin(), order_.end());
  }

  double batch_weight(std::size_t b) const override {
    return double(std::min(batch_, order_.size() - b * batch_));
  }

  BatchLoss forward_loss(std::size_t b, const TrainingForward& forward) override {
    const std::size_t first = b * batch_;
    const std::size_t n = std::min(batch_, order_.size() - first);
    gather_rows(data_.train, order_, first, n, input_);
    const Tensor<float>& logits = forward(input_);
    const LossValue loss = row_loss(logits, data_.train, order_, first, logits3_, dlogits_);
    return {loss.mean, loss.sum_of_sequence_means, n, n};
  }

  void backward(float scale, const Model<float>::GradientsDone& completed) override {
    if (scale != 1.0f) dlogits_ *= scale;
    if (completed)
      c_.model.backward(dlogits_, completed);
    else
      c_.model.backward(dlogits_);
  }

  Checkpoint checkpoint_base() const override {
    Checkpoint ck;
    ck.config_text = c_.config.text;
    ck.config_file = c_.config.file;
    ck.seed = c_.config.seed;
    ck.parameters = export_parameters(c_.model);
    return ck;
  }

  // Every phase validates on the rows held out by task.validation_fraction.
  bool has_validation(std::size_t) const override { return data_.held_out.rows() > 0; }
  Evaluation evaluate(std::size_t) override {
    const ClassificationScore score = strata::evaluate(c_, data_.held_out);
    return {score.mean_loss, score.accuracy()};
  }
  std::string metric_name() const override { return "accuracy"; }

  std::string rate_unit() const override { return "rows/s"; }
  std::string rate_column() const override { return "examples_per_second"; }
  std::string metrics_header() const override {
    return "phase,epoch,step,loss,lr,rows,seconds,rows_per_s";
  }

  // DIR/split.json: which rows were trained on and which held out.
  void write_run_files(const std::string& out_dir) const override {
    const nlohmann::json split = {{"data", c_.task.data},
                                  {"seed", c_.config.seed},
                                  {"validation_fraction", c_.task.validation_fraction},
                                  {"train", data_.split.train},
                                  {"held_out", data_.split.held_out}};
    make_directories(out_dir);
    write_file_atomic((std::filesystem::path(out_dir) / "split.json").string(),
                      split.dump() + "\n");
  }

 private:
  Classifier& c_;
  ClassificationData data_;
  std::vector<std::size_t> order_;  // of the epoch
  std::size_t batch_ = 1;
  Tensor<float> input_, logits3_, dlogits_;
};

}  // namespace

TrainResult train(Classifier& classifier, Optimizer<float>& optimizer, const TrainOptions& options,
                  const Checkpoint* resume) {
  ClassifierTask task(classifier);
  return run_training(task, optimizer, options, resume);
}

}  // namespace strata
