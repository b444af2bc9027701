// End-to-end training: loss falls and repeats bit for bit, a masked batch equals its
// sequences one by one, resume equals an uninterrupted run, a tiny LM memorises.
#include <boost/test/unit_test.hpp>
#include <fstream>

#include "framework/loss.hpp"
#include "framework/model.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/generator.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "training/checkpoint.hpp"
#include "training/trainer.hpp"

using namespace strata;
using strata::testing::TempDir;
using strata::testing::train_from_yaml;

namespace {

const char* kSentences =
    "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
    " \"birds sing at dawn </s>\", \"rain falls from grey clouds </s>\"]";

std::string run_yaml(const std::string& data, int epochs, int batch, bool shuffle,
                     int checkpoint_every = 0, bool dropout = false) {
  return "seed: 7\n"
         "model:\n"
         "  max_seq_len: 16\n"
         "  layers:\n"
         "    - {type: Embedding, dim: 16}\n" +
         std::string(dropout ? "    - {type: Dropout, rate: 0.2}\n" : "") +
         "    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 16, hidden: 32}\n"
         "    - {type: OutputProjection}\n"
         "optimizer: {type: Adam, lr: 0.01, clip_norm: 5.0}\n"
         "training:\n"
         "  checkpoint_every: " +
         std::to_string(checkpoint_every) +
         "\n"
         "  phases:\n"
         "    - {name: facts, data: " +
         data + ", epochs: " + std::to_string(epochs) + ", batch: " + std::to_string(batch) +
         ", shuffle: " + (shuffle ? "true" : "false") + "}\n";
}

std::vector<double> losses(const TrainResult& r) {
  std::vector<double> out;
  for (const auto& e : r.epochs) out.push_back(e.loss);
  return out;
}

void expect_resume_equals_uninterrupted(bool dropout) {
  TempDir dir("resume");
  const std::string data = dir.write("facts.json", kSentences);
  // 4 sequences, batch 1, shuffled: 4 steps per epoch; checkpoints every 3 steps, so the
  // interruption (after step 7, last checkpoint at step 6) falls inside an epoch.
  const std::string yaml = run_yaml(data, 5, 1, true, 3, dropout);
  const TrainResult whole = train_from_yaml(yaml, dir.file("whole"));

  const TrainResult cut = train_from_yaml(yaml, dir.file("cut"), 7);
  BOOST_TEST(!cut.finished);
  const Checkpoint checkpoint = load_checkpoint(dir.file("cut"));
  BOOST_TEST(checkpoint.position.step == 6);
  const TrainResult rest = strata::testing::resume_training(dir.file("cut"));
  BOOST_TEST(rest.finished);

  // Epochs 2..5 completed after the resume; epoch 1 was logged before it.
  std::vector<double> resumed = losses(cut);
  for (double l : losses(rest)) resumed.push_back(l);
  BOOST_TEST(resumed == losses(whole));  // bit for bit
  // metrics.csv: a header and one row per epoch, from the first epoch on.
  std::ifstream metrics(dir.file("whole") + "/metrics.csv");
  std::string line;
  std::size_t rows = 0;
  while (std::getline(metrics, line)) ++rows;
  BOOST_TEST(rows == 1 + whole.epochs.size());
  const Checkpoint a = load_checkpoint(dir.file("whole"));
  const Checkpoint b = load_checkpoint(dir.file("cut"));
  for (std::size_t i = 0; i < a.parameters.size(); ++i)
    BOOST_TEST(a.parameters[i].data == b.parameters[i].data, a.parameters[i].name);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training)

BOOST_AUTO_TEST_CASE(loss_falls_ninety_percent_and_two_runs_are_identical) {
  TempDir dir("train");
  const std::string data = dir.write("facts.json", kSentences);
  const std::string yaml = run_yaml(data, 40, 2, true);
  const TrainResult first = train_from_yaml(yaml);
  const TrainResult second = train_from_yaml(yaml);
  BOOST_TEST_MESSAGE("loss " << first.epochs.front().loss << " -> " << first.epochs.back().loss);
  BOOST_TEST(first.epochs.back().loss <= 0.1 * first.epochs.front().loss);
  BOOST_TEST(losses(first) == losses(second));  // bit for bit
}

BOOST_AUTO_TEST_CASE(tiny_lm_memorises_its_sentences) {
  TempDir dir("memorise");
  const std::string data = dir.write("facts.json", kSentences);
  LanguageModel lm =
      LanguageModel::create(parse_run_config(run_yaml(data, 60, 1, false), "t.yaml"));
  auto optimizer = make_optimizer<float>(lm.config.optimizer);
  train(lm, *optimizer, TrainOptions{});
  Rng rng(0);
  for (const std::string sentence :
       {"the cat sat on the mat </s>", "a dog ran in the park </s>", "birds sing at dawn </s>",
        "rain falls from grey clouds </s>"}) {
    const auto ids = lm.encode(sentence, nullptr);
    const std::vector<std::int32_t> prompt(ids.begin(), ids.begin() + 2);
    const auto out = generate(lm.model, prompt, lm.tokenizer->eos_id(), SamplingOptions{}, rng);
    BOOST_TEST(out == std::vector<std::int32_t>(ids.begin() + 2, ids.end()), sentence);
  }
}

BOOST_AUTO_TEST_CASE(resume_equals_uninterrupted_training) {
  expect_resume_equals_uninterrupted(false);
}

// Dropout draws its masks from its own generator: its state travels with the checkpoint.
BOOST_AUTO_TEST_CASE(resume_with_dropout_equals_uninterrupted_training) {
  expect_resume_equals_uninterrupted(true);
}

BOOST_AUTO_TEST_CASE(metrics_csv_has_every_epoch_before_the_first_checkpoint) {
  TempDir dir("metrics");
  const std::string data = dir.write("facts.json", kSentences);
  // No checkpoint until the phase ends: the run directory must exist from the start.
  const TrainResult r = train_from_yaml(run_yaml(data, 3, 2, false), dir.file("run"));
  std::ifstream metrics(dir.file("run") + "/metrics.csv");
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(metrics, line)) lines.push_back(line);
  BOOST_TEST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(lines[0] == "phase,epoch,step,loss,lr,tokens,seconds,tokens_per_s");
  BOOST_TEST(lines[1].rfind("facts,1,2,", 0) == 0, lines[1]);
  BOOST_TEST(r.epochs.size() == 3u);
}

BOOST_AUTO_TEST_CASE(masked_batch_equals_its_sequences_one_by_one) {
  Rng rng(11);
  const ConfigNode root = ConfigNode::parse(strata::testing::tiny_model_yaml(10), "t.yaml");
  Model<double> model = build_model<double>(root.get("model"), 10, rng);
  const std::vector<std::vector<std::int32_t>> seqs = {{1, 4, 2, 7, 3}, {5, 9, 8}};
  // Batched: right-padded with 0, padding targets ignored.
  Tensor<double> batch_input = xt::zeros<double>({2, 4});
  std::vector<std::int32_t> batch_targets(8, kIgnore);
  std::size_t total_tokens = 0;
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    for (std::size_t t = 0; t + 1 < seqs[b].size(); ++t) {
      batch_input(b, t) = seqs[b][t];
      batch_targets[b * 4 + t] = seqs[b][t + 1];
    }
    total_tokens += seqs[b].size() - 1;
  }
  Tensor<double> dlogits;
  model.zero_grad();
  const LossValue batched =
      softmax_cross_entropy(model.forward(batch_input, Mode::train), batch_targets, dlogits);
  model.backward(dlogits);
  std::vector<Tensor<double>> batched_grads;
  for (auto* p : model.parameters()) batched_grads.push_back(p->grad);

  // One by one: the batch objective is the token-weighted mean of the sequence losses.
  model.zero_grad();
  double weighted = 0;
  for (const auto& s : seqs) {
    Tensor<double> input = Tensor<double>::from_shape({1, s.size() - 1});
    std::vector<std::int32_t> targets;
    for (std::size_t t = 0; t + 1 < s.size(); ++t) input(0, t) = s[t], targets.push_back(s[t + 1]);
    const LossValue one =
        softmax_cross_entropy(model.forward(input, Mode::train), targets, dlogits);
    const double weight = double(s.size() - 1) / double(total_tokens);
    weighted += weight * one.mean;
    dlogits *= weight;
    model.backward(dlogits);
  }
  BOOST_TEST(batched.mean == weighted, boost::test_tools::tolerance(1e-12));
  for (std::size_t i = 0; i < batched_grads.size(); ++i) {
    const auto& p = *model.parameters()[i];
    const double diff = xt::amax(xt::abs(p.grad - batched_grads[i]))();
    BOOST_TEST(diff <= 1e-12, p.name << " differs by " << diff);
  }
}

BOOST_AUTO_TEST_SUITE_END()
