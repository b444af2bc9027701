// The run loop's measurements and options (training/trainer.hpp): steps.csv and
// validation.csv of a resumed run equal an uninterrupted run's, gradient accumulation
// equals one larger batch within float rounding, early stopping keeps the best
// checkpoint, a classifier validates on its held-out rows.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fstream>
#include <sstream>

#include "float_bounds.hpp"
#include "test_support.hpp"
#include "training/checkpoint.hpp"

using namespace strata;
using strata::testing::TempDir;
using strata::testing::train_from_yaml;

namespace {

const char* kSentences =
    "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
    " \"birds sing at dawn </s>\", \"rain falls from grey clouds </s>\","
    " \"the dog sat in the rain </s>\", \"a cat ran from the park </s>\","
    " \"grey birds sing at the mat </s>\", \"clouds fall at dawn </s>\"]";

std::string lm_yaml(const std::string& data, const std::string& phase_extra,
                    const std::string& training_extra = "",
                    const std::string& optimizer = "{type: Adam, lr: 0.01, clip_norm: 5.0}") {
  return "seed: 7\n"
         "model:\n"
         "  max_seq_len: 16\n"
         "  layers:\n"
         "    - {type: Embedding, dim: 8}\n"
         "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 8, hidden: 16, heads: 2}\n"
         "    - {type: OutputProjection}\n"
         "optimizer: " +
         optimizer +
         "\n"
         "training:\n" +
         training_extra + "  phases:\n    - {name: facts, data: " + data + ", " + phase_extra +
         "}\n";
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The line without its last column (steps.csv's rate is a time).
std::string without_last_column(const std::string& line) { return line.substr(0, line.rfind(',')); }

}  // namespace

BOOST_AUTO_TEST_SUITE(run_loop)

// 8 sentences, 2 held out by the seed: 6 to train on, batch 1, 4 epochs = 24 steps;
// validation every 5 steps and at each epoch's end; a checkpoint every 4 steps; cut
// after step 11 (last checkpoint at step 8).
BOOST_AUTO_TEST_CASE(steps_and_validation_csv_of_a_resumed_run_equal_an_uninterrupted_one) {
  TempDir dir("steps");
  const std::string data = dir.write("facts.json", kSentences);
  const std::string yaml =
      lm_yaml(data, "epochs: 4, batch: 1, shuffle: true, validation_fraction: 0.25",
              "  checkpoint_every: 4\n  eval_every: 5\n");
  const TrainResult whole = train_from_yaml(yaml, dir.file("whole"));
  BOOST_TEST(whole.steps == 24);
  const TrainResult cut = train_from_yaml(yaml, dir.file("cut"), 11);
  BOOST_TEST(!cut.finished);
  BOOST_TEST(strata::testing::resume_training(dir.file("cut")).finished);

  const auto steps_whole = lines(dir.file("whole") + "/steps.csv");
  const auto steps_cut = lines(dir.file("cut") + "/steps.csv");
  BOOST_TEST(steps_whole.front() ==
             "step,phase,epoch,loss,learning_rate,grad_norm,tokens_per_second");
  BOOST_TEST(steps_whole.size() == 1u + 24u);
  BOOST_REQUIRE(steps_cut.size() == steps_whole.size());
  for (std::size_t i = 0; i < steps_whole.size(); ++i)
    BOOST_TEST(without_last_column(steps_whole[i]) == without_last_column(steps_cut[i]));
  BOOST_TEST(steps_whole[1].rfind("1,facts,1,", 0) == 0u);

  // Steps 5, 10, 15, 20 and the ends of epochs 1-4 (steps 6, 12, 18, 24): 8 rows.
  const auto val_whole = lines(dir.file("whole") + "/validation.csv");
  BOOST_TEST(val_whole.front() == "step,phase,epoch,loss,perplexity");
  BOOST_TEST(val_whole.size() == 1u + 8u);
  BOOST_TEST(val_whole == lines(dir.file("cut") + "/validation.csv"),
             boost::test_tools::per_element());
  BOOST_TEST(whole.validations.size() == 8u);
  for (const ValidationRecord& v : whole.validations)
    BOOST_TEST(std::abs(v.metric - std::exp(v.loss)) <= 1e-12 * v.metric);
}

// One step of batch 2 x accumulate 2 against one of batch 4: the same gradient, summed
// in another order (per position, the reductions of forward and backward through the
// blocks, and the weight gradients' sum over the batch's positions). Plain SGD at lr 1
// makes the parameter change the gradient itself.
BOOST_AUTO_TEST_CASE(accumulation_equals_one_batch_that_many_times_larger) {
  TempDir dir("accumulate");
  const std::string data = dir.write("facts.json", kSentences);
  const std::string sgd = "{type: SGD, lr: 1.0}";
  const std::string small = lm_yaml(data, "epochs: 1, batch: 2, accumulate: 2", "", sgd);
  const std::string large = lm_yaml(data, "epochs: 1, batch: 4", "", sgd);
  Run a = Run::start(parse_run_config(small, "a.yaml"));
  Run b = Run::start(parse_run_config(large, "b.yaml"));
  std::vector<std::vector<float>> initial;
  for (const Parameter<float>* p : a.model().parameters())
    initial.emplace_back(p->value.begin(), p->value.end());
  TrainOptions options;
  options.stop_after_steps = 1;
  const TrainResult ra = a.train(options), rb = b.train(options);
  BOOST_TEST(ra.steps == 1);
  BOOST_TEST(rb.steps == 1);

  // Tokens per sentence at most 8 (7 words and </s>): 7 positions per row.
  const std::size_t positions = 7, rows = 4;
  const std::size_t n =
      2 * strata::testing::transformer_path_length(2, 8, 2, 16, positions) + rows * positions;
  const auto& pa = a.model().parameters();
  const auto& pb = b.model().parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const float* x = pa[i]->value.data();
    const float* y = pb[i]->value.data();
    double magnitude = 0, largest = 0, error = 0;
    for (std::size_t j = 0; j < pa[i]->value.size(); ++j) {
      magnitude = std::max(magnitude, std::abs(double(x[j]) - initial[i][j]));  // |gradient|
      largest = std::max(largest, std::abs(double(x[j])));
      error = std::max(error, std::abs(double(x[j]) - double(y[j])));
    }
    // The gradients' reordering, then each subtraction's rounding of the result.
    const double bound = strata::testing::reordering_bound<float>(n, magnitude) +
                         std::numeric_limits<float>::epsilon() * largest;
    BOOST_TEST_MESSAGE(pa[i]->name << ": " << error << " <= " << bound);
    BOOST_TEST(error <= bound, pa[i]->name << ": " << error << " > " << bound);
  }
  // An epoch of 8 sentences is 4 batches of 2: 2 steps.
  Run c = Run::start(parse_run_config(small, "c.yaml"));
  BOOST_TEST(c.train(TrainOptions{}).steps == 2);
}

// Validation on other sentences than the training ones at a high learning rate: the
// model overfits, validation loss rises, and the phase ends `patience` evaluations after
// its best, which DIR/best holds.
BOOST_AUTO_TEST_CASE(patience_ends_the_phase_and_the_best_checkpoint_is_kept) {
  TempDir dir("patience");
  const std::string data = dir.write("facts.json", kSentences);
  const std::string held =
      dir.write("held.json", "[\"the park sat on a dog </s>\", \"rain sing at the cat </s>\"]");
  const std::string yaml = lm_yaml(data, "epochs: 200, batch: 2, validation: " + held,
                                   "  patience: 3\n", "{type: Adam, lr: 0.05}");
  const TrainResult r = train_from_yaml(yaml, dir.file("run"));
  BOOST_TEST(r.finished);
  BOOST_REQUIRE(r.validations.size() >= 4u);
  BOOST_TEST(r.steps < 200 * 4);  // stopped early
  std::size_t best = 0;
  for (std::size_t i = 0; i < r.validations.size(); ++i)
    if (r.validations[i].loss < r.validations[best].loss) best = i;
  BOOST_TEST(best + 3 + 1 == r.validations.size());  // the last 3 were not better
  const Checkpoint kept = load_checkpoint(dir.file("run") + "/best");
  BOOST_TEST(kept.position.step == r.validations[best].step);
  BOOST_TEST(kept.position.best_loss == r.validations[best].loss);
  // The run's own checkpoint is of its end, 3 evaluations later: other weights.
  BOOST_TEST(load_checkpoint(dir.file("run")).position.step == r.steps);
  BOOST_TEST(load_checkpoint(dir.file("run")).parameters[0].data != kept.parameters[0].data);
  BOOST_TEST(lines(dir.file("run") + "/validation.csv").size() == 1 + r.validations.size());
}

// A classifier validates on the rows task.validation_fraction holds out: accuracy.
BOOST_AUTO_TEST_CASE(a_classifier_validates_on_its_held_out_rows) {
  TempDir dir("cls");
  std::ostringstream csv;
  for (int i = 0; i < 40; ++i) csv << (i % 2) * 5 + i % 3 << "," << i % 4 << "," << i % 2 << "\n";
  const std::string rows = dir.write("rows.csv", csv.str());
  const std::string yaml =
      "seed: 3\n"
      "task: {type: classification, data: " +
      rows +
      ", features: 2, classes: 2, validation_fraction: 0.25}\n"
      "model:\n  layers:\n    - {type: Linear, out: 8}\n    - {type: ReLU}\n"
      "    - {type: Linear, out: 2}\n"
      "optimizer: {type: Adam, lr: 0.01}\n"
      "training:\n  phases:\n    - {name: train, epochs: 3, batch: 8, accumulate: 2}\n";
  const TrainResult r = train_from_yaml(yaml, dir.file("run"));
  BOOST_TEST(r.steps == 3 * 2);  // 30 rows: 4 batches of 8, 2 steps per epoch
  const auto val = lines(dir.file("run") + "/validation.csv");
  BOOST_TEST(val.front() == "step,phase,epoch,loss,accuracy");
  BOOST_TEST(val.size() == 1u + 3u);
  for (const ValidationRecord& v : r.validations) BOOST_TEST((v.metric >= 0 && v.metric <= 1));
  BOOST_TEST(lines(dir.file("run") + "/steps.csv").front() ==
             "step,phase,epoch,loss,learning_rate,grad_norm,examples_per_second");
}

BOOST_AUTO_TEST_SUITE_END()
