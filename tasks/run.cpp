#include "tasks/run.hpp"

#include "training/training_state.hpp"

namespace strata {

Run Run::start(RunConfig config) {
  Run run;
  if (is_classification(config))
    run.classifier_ = std::make_unique<Classifier>(Classifier::create(std::move(config)));
  else
    run.lm_ = std::make_unique<LanguageModel>(LanguageModel::create(std::move(config)));
  run.make_optimizer_from_config();
  return run;
}

Run Run::start_from(RunConfig config, const std::string& init_dir) {
  const Checkpoint source = load_checkpoint(init_dir);
  const std::string what = "--init-from " + init_dir;
  Run run;
  if (is_classification(config)) {
    run.classifier_ = std::make_unique<Classifier>(Classifier::create(std::move(config)));
    import_parameters(run.classifier_->model, source.parameters, what);
  } else {
    run.lm_ = std::make_unique<LanguageModel>(LanguageModel::create(
        std::move(config), load_tokenizer(source.tokenizer_type, source.tokenizer_files,
                                          checkpoint_directory(init_dir))));
    run.lm_->import_parameters(source.parameters, what);
  }
  run.make_optimizer_from_config();
  return run;
}

Run Run::resume(const std::string& run_dir) {
  Run run;
  run.checkpoint_ = std::make_unique<Checkpoint>(load_checkpoint(run_dir));
  const Checkpoint& c = *run.checkpoint_;
  if (is_classification(
          parse_run_config(c.config_text, checkpoint_directory(run_dir) + "/config.yaml")))
    run.classifier_ = std::make_unique<Classifier>(Classifier::restore(c, run_dir));
  else
    run.lm_ = std::make_unique<LanguageModel>(LanguageModel::restore(c, run_dir));
  run.make_optimizer_from_config();
  return run;
}

Run Run::of(LanguageModel lm) {
  Run run;
  run.lm_ = std::make_unique<LanguageModel>(std::move(lm));
  run.make_optimizer_from_config();
  return run;
}

void Run::make_optimizer_from_config() { optimizer_ = make_optimizer<float>(config().optimizer); }

TrainResult Run::train(const TrainOptions& options) {
  return lm_ ? strata::train(*lm_, *optimizer_, options, checkpoint_.get())
             : strata::train(*classifier_, *optimizer_, options, checkpoint_.get());
}

RunConfig& Run::config() { return lm_ ? lm_->config : classifier_->config; }

const Model<float>& Run::model() const { return lm_ ? lm_->model : classifier_->model; }

std::string Run::describe() const {
  return std::to_string(model().parameter_count()) + " parameters, " +
         (lm_ ? "vocabulary " + std::to_string(lm_->tokenizer->size())
              : "classes " + std::to_string(classifier_->task.classes));
}

}  // namespace strata
