// Checkpoint files: .npz round trip, integrity checks, atomic replacement.
#include "training/checkpoint.hpp"

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "framework/errors.hpp"
#include "framework/files.hpp"
#include "framework/npz.hpp"
#include "test_support.hpp"

using namespace strata;
using strata::testing::error_of;
using strata::testing::TempDir;

namespace {

std::vector<NamedArray> sample_arrays() {
  return {{"blocks.0.attn.w_q", {2, 3}, {1, 2, 3, 4, 5, 6}},
          {"embedding.position", {4}, {-1.5f, 0, 2.25f, 1e-8f}},
          {"scalar", {}, {7}}};
}

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.config_text = "seed: 1\n";
  c.config_file = "x.yaml";
  c.tokenizer_files = {{"vocab.txt", "</s>\n<pad>\n<unk>\nhello\n"}};
  c.parameters = sample_arrays();
  c.optimizer_state = {{"scalar/m", {}, {0.5f}}};
  c.optimizer_steps = 12;
  c.seed = 5;
  c.data_overrides = {{"pretrain", "other.json"}};
  c.position.step = 12;
  c.position.phase = 1;
  c.position.epoch = 3;
  c.position.next_batch = 2;
  c.position.rng = "rng-state";
  c.position.epoch_rng = "epoch-rng-state";
  c.position.epoch_loss_sum = 1.25;
  c.position.layer_rngs = {"dropout-0-state", "dropout-1-state"};
  c.position.epoch_sequences = 7;
  c.position.epoch_tokens = 41;
  c.position.metrics_rows = 9;
  return c;
}

bool same(const std::vector<NamedArray>& a, const std::vector<NamedArray>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].data != b[i].data) return false;
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(crc32_matches_the_standard_check_value) {
  BOOST_TEST(crc32("123456789", 9) == 0xCBF43926u);
}

BOOST_AUTO_TEST_CASE(npz_round_trip) {
  const auto arrays = sample_arrays();
  BOOST_TEST(same(decode_npz(encode_npz(arrays), "mem"), arrays));
}

BOOST_AUTO_TEST_CASE(npz_rejects_corruption_and_truncation) {
  std::string bytes = encode_npz(sample_arrays());
  std::string flipped = bytes;
  flipped[100] ^= 0x20;
  BOOST_TEST(error_of([&] { decode_npz(flipped, "m.npz"); }).find("m.npz") != std::string::npos);
  BOOST_TEST(!error_of([&] { decode_npz(bytes.substr(0, bytes.size() / 2), "m.npz"); }).empty());
  BOOST_TEST(!error_of([&] { decode_npz("", "m.npz"); }).empty());
}

BOOST_AUTO_TEST_CASE(save_load_round_trip) {
  TempDir dir("ckpt");
  const Checkpoint c = sample_checkpoint();
  save_checkpoint(dir.path.string(), c);
  const Checkpoint back = load_checkpoint(dir.path.string());
  BOOST_TEST(back.config_text == c.config_text);
  BOOST_TEST(back.config_file == c.config_file);
  // The config on disk is the config text itself (a user reads or reuses it).
  BOOST_TEST(read_file(checkpoint_directory(dir.path.string()) + "/config.yaml") == c.config_text);
  BOOST_TEST(back.tokenizer_type == c.tokenizer_type);
  BOOST_TEST((back.tokenizer_files == c.tokenizer_files));
  BOOST_TEST(same(back.parameters, c.parameters));
  BOOST_TEST(same(back.optimizer_state, c.optimizer_state));
  BOOST_TEST(back.optimizer_steps == 12);
  BOOST_TEST(back.seed == 5u);
  BOOST_TEST(back.data_overrides.at("pretrain") == "other.json");
  BOOST_TEST(back.position.phase == 1u);
  BOOST_TEST(back.position.epoch == 3);
  BOOST_TEST(back.position.next_batch == 2u);
  BOOST_TEST(back.position.rng == "rng-state");
  BOOST_TEST(back.position.epoch_rng == "epoch-rng-state");
  BOOST_TEST(back.position.epoch_loss_sum == 1.25);
  // The rest of the training position.
  BOOST_TEST(back.position.step == 12);
  BOOST_TEST(back.position.layer_rngs == c.position.layer_rngs);
  BOOST_TEST(back.position.epoch_sequences == 7u);
  BOOST_TEST(back.position.epoch_tokens == 41u);
  BOOST_TEST(back.position.metrics_rows == 9u);
}

// A checkpoint written by training holds the run's config and where it stopped: 4
// sequences at batch 1 are 4 steps an epoch; stopped after step 5, the last checkpoint
// (every 2 steps) is step 4, and its epoch and next batch point at the same place.
BOOST_AUTO_TEST_CASE(training_checkpoint_holds_config_and_position) {
  TempDir dir("ckpt-train");
  const std::string data = dir.write(
      "facts.json",
      "[\"the cat sat </s>\", \"a dog ran </s>\", \"birds sing </s>\", \"rain falls </s>\"]");
  const std::string yaml =
      "seed: 4\n"
      "model:\n"
      "  max_seq_len: 8\n"
      "  layers:\n"
      "    - {type: Embedding, dim: 8}\n"
      "    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 8, hidden: 16}\n"
      "    - {type: OutputProjection}\n"
      "optimizer: {type: Adam, lr: 0.01}\n"
      "training:\n"
      "  checkpoint_every: 2\n"
      "  phases:\n"
      "    - {name: p, data: " +
      data + ", epochs: 3, batch: 1, shuffle: false}\n";
  strata::testing::train_from_yaml(yaml, dir.file("run"), 5);
  const Checkpoint back = load_checkpoint(dir.file("run"));
  BOOST_TEST(back.config_text == yaml);
  BOOST_TEST(read_file(checkpoint_directory(dir.file("run")) + "/config.yaml") == yaml);
  BOOST_TEST(back.position.step == 4);
  BOOST_TEST(back.optimizer_steps == 4);
  BOOST_TEST(back.position.phase == 0u);
  BOOST_TEST(back.position.step ==
             back.position.epoch * 4 + std::int64_t(back.position.next_batch));
  BOOST_TEST(back.seed == 4u);
}

BOOST_AUTO_TEST_CASE(saving_again_replaces_the_checkpoint_and_leaves_no_temporaries) {
  TempDir dir("ckpt2");
  Checkpoint c = sample_checkpoint();
  save_checkpoint(dir.path.string(), c);
  c.optimizer_steps = 13;
  c.parameters[0].data[0] = 42;
  save_checkpoint(dir.path.string(), c);
  const Checkpoint back = load_checkpoint(dir.path.string());
  BOOST_TEST(back.optimizer_steps == 13);
  BOOST_TEST(back.parameters[0].data[0] == 42.0f);
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) {
    ++entries;
    BOOST_TEST(e.path().filename() == "checkpoint");
  }
  BOOST_TEST(entries == 1u);
}

BOOST_AUTO_TEST_CASE(truncated_or_corrupted_files_are_refused_by_name) {
  TempDir dir("ckpt3");
  save_checkpoint(dir.path.string(), sample_checkpoint());
  const std::string model = checkpoint_directory(dir.path.string()) + "/model.npz";
  const std::string bytes = read_file(model);
  write_file_atomic(model, bytes.substr(0, bytes.size() - 7));
  std::string message = error_of([&] { load_checkpoint(dir.path.string()); });
  BOOST_TEST(message.find("model.npz") != std::string::npos, message);
  BOOST_TEST(message.find("truncated") != std::string::npos, message);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  write_file_atomic(model, flipped);
  message = error_of([&] { load_checkpoint(dir.path.string()); });
  BOOST_TEST(message.find("checksum") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(missing_checkpoint_is_a_clear_error) {
  TempDir dir("ckpt4");
  const std::string message = error_of([&] { load_checkpoint(dir.path.string()); });
  BOOST_TEST(message.find("no checkpoint") != std::string::npos, message);
}

BOOST_AUTO_TEST_SUITE_END()
