// Loading training texts (JSON and plain text, with their errors), batching with
// padding and ignored targets, seeded shuffling, and the shipped corpus.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "framework/errors.hpp"
#include "framework/loss.hpp"
#include "framework/rng.hpp"
#include "tasks/batch.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "text/dataset.hpp"
#include "text/word_tokenizer.hpp"

using namespace strata;
namespace fs = std::filesystem;

namespace {

using strata::testing::error_of;
using strata::testing::rows_of_whole_batch;
using strata::testing::TempDir;

using Ids = std::vector<std::int32_t>;
using Texts = std::vector<std::string>;

// The order in which the sequences' first tokens come out of the batches.
Ids first_tokens(const std::vector<Batch>& batches) {
  Ids out;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.batch; ++r) out.push_back(b.inputs[r * b.length]);
  return out;
}

std::vector<Ids> numbered_sequences(std::size_t count) {
  // Sequence i starts with token i and has 2 + i % 5 tokens: distinct, varied lengths.
  std::vector<Ids> seqs;
  for (std::size_t i = 0; i < count; ++i) {
    Ids s(2 + i % 5, 1000);
    s[0] = static_cast<std::int32_t>(i);
    seqs.push_back(s);
  }
  return seqs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(data)

BOOST_AUTO_TEST_CASE(loads_a_json_array_of_strings) {
  TempDir dir;
  const std::string path = dir.write(
      "facts.json", "[\n  \"Snow is cold </s>\",\n  \"Say \\\"hi\\\" \\u00e9 </s>\"\n]\n");
  const Texts texts = load_texts(path);
  BOOST_TEST(texts == (Texts{"Snow is cold </s>", "Say \"hi\" \xC3\xA9 </s>"}));
}

BOOST_AUTO_TEST_CASE(loads_plain_text_one_example_per_line) {
  TempDir dir;
  const std::string path = dir.write("facts.txt", "first line </s>\n\n   \nsecond\r\n\tthird\n");
  BOOST_TEST(load_texts(path) == (Texts{"first line </s>", "second", "\tthird"}));
  // No newline at the end of the file is fine too.
  BOOST_TEST(load_texts(dir.write("one.txt", "only")) == (Texts{"only"}));
}

BOOST_AUTO_TEST_CASE(format_detection_and_override) {
  BOOST_TEST((detect_format("data/chat.json") == DataFormat::kJson));
  BOOST_TEST((detect_format("data/CHAT.JSON") == DataFormat::kJson));
  BOOST_TEST((detect_format("data/chat.txt") == DataFormat::kText));
  BOOST_TEST((detect_format("data/json") == DataFormat::kText));
  BOOST_TEST((parse_data_format("json") == DataFormat::kJson));
  BOOST_TEST(error_of([] { parse_data_format("yaml"); }).find("\"yaml\"") != std::string::npos);

  TempDir dir;
  // A JSON file with a .txt name, read as JSON on request and as lines by default.
  const std::string path = dir.write("list.txt", "[\"a </s>\", \"b </s>\"]");
  BOOST_TEST(load_texts(path, DataFormat::kJson) == (Texts{"a </s>", "b </s>"}));
  BOOST_TEST(load_texts(path) == (Texts{"[\"a </s>\", \"b </s>\"]"}));
  // And a .json file read as text.
  const std::string lines = dir.write("lines.json", "x\ny\n");
  BOOST_TEST(load_texts(lines, DataFormat::kText) == (Texts{"x", "y"}));
}

BOOST_AUTO_TEST_CASE(missing_or_unreadable_file) {
  TempDir dir;
  const std::string missing = (dir.path / "nope.json").string();
  BOOST_TEST(error_of([&] { load_texts(missing); }) == missing + ": no such file");
  const std::string folder = dir.path.string();
  BOOST_TEST(error_of([&] { load_texts(folder); }) == folder + ": is a directory");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_names_the_data_file_and_line) {
  // Before, the text loaded and the vocabulary refused it as "<built vocabulary>:563".
  TempDir dir;
  const std::string text = dir.write("latin1.txt", "fine </s>\nalso fine\ncaf\xe9 au lait\n");
  BOOST_TEST(error_of([&] { load_texts(text); }) ==
             text + ":3:4: invalid UTF-8 (byte 0xe9): data files must be UTF-8 text");
  const std::string truncated = dir.write("cut.txt", "ok\nends in \xe2\x82");
  BOOST_TEST(error_of([&] { load_texts(truncated); }).rfind(truncated + ":2:9: invalid UTF-8", 0) ==
             0);
  const std::string json = dir.write("latin1.json", "[\"ok\", \"caf\xe9\"]");
  BOOST_TEST(error_of([&] { load_texts(json); }).rfind(json + ":1:13: malformed JSON", 0) == 0);
  // Through a run: the phase, then the file's own position.
  RunConfig config = parse_run_config(
      "model: {max_seq_len: 4, layers: [{type: Embedding, dim: 2}]}\n"
      "optimizer: {type: SGD}\n"
      "training:\n  phases:\n    - {name: p, data: " +
          text + ", epochs: 1}\n",
      "run.yaml");
  BOOST_TEST(error_of([&] { build_tokenizer(config); }) ==
             "run.yaml:5:23: training.phases \"p\": " + text +
                 ":3:4: invalid UTF-8 (byte 0xe9): data files must be UTF-8 text");
}

BOOST_AUTO_TEST_CASE(each_data_file_is_read_once_per_run) {
  // A pipe or /dev/stdin can be read only once: the vocabulary and the training must
  // share one read. Here the file is gone after the first: a second read would fail.
  TempDir dir;
  const std::string data = dir.write("once.txt", "the cat sat </s>\na dog ran </s>\n");
  const RunConfig config = parse_run_config(
      "model: {max_seq_len: 8, layers: [{type: Embedding, dim: 2}]}\n"
      "optimizer: {type: SGD}\n"
      "training:\n  phases:\n"
      "    - {name: a, data: " +
          data +
          ", epochs: 1}\n"
          "    - {name: b, data: " +
          data + ", epochs: 1}\n",
      "run.yaml");
  const auto vocabulary = build_tokenizer(config);
  fs::remove(data);
  const auto texts = load_phase_texts(config);
  BOOST_TEST(texts.size() == 2u);
  BOOST_TEST(texts[1] == (Texts{"the cat sat </s>", "a dog ran </s>"}));
  BOOST_TEST(vocabulary->size() == 9u);  // 3 specials + the cat sat a dog ran
  const RunConfig copy = config;         // copies share what was read
  BOOST_TEST(load_phase_texts(copy)[0] == texts[0]);
}

BOOST_AUTO_TEST_CASE(endless_data_stops_at_the_size_limit) {
  BOOST_TEST(error_of([] { read_data_file("/dev/zero"); }) ==
             "/dev/zero: larger than 256 MiB (268435456 bytes), the most a data file may hold");
}

BOOST_AUTO_TEST_CASE(malformed_json_reports_its_position) {
  TempDir dir;
  // Missing comma: the parser gives up at the end of the second string (line 3,
  // column 12: the last character it read).
  const std::string path = dir.write("bad.json", "[\n  \"one </s>\"\n  \"two </s>\"\n]\n");
  const std::string msg = error_of([&] { load_texts(path); });
  BOOST_TEST_MESSAGE(msg);
  BOOST_TEST(msg.starts_with(path + ":3:12: malformed JSON: "), msg);
  BOOST_TEST(msg.find("unexpected string literal") != std::string::npos, msg);

  const std::string truncated = dir.write("cut.json", "[\"one </s>\",");
  const std::string cut_msg = error_of([&] { load_texts(truncated); });
  BOOST_TEST_MESSAGE(cut_msg);
  BOOST_TEST(cut_msg.starts_with(truncated + ":1:13: "), cut_msg);  // just past the end
  BOOST_TEST(cut_msg.find("malformed JSON") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(non_string_elements_are_named_by_index) {
  TempDir dir;
  const std::string number = dir.write("n.json", "[\"a </s>\", \"b </s>\", 42]");
  BOOST_TEST(error_of([&] { load_texts(number); }) ==
             number + ": element 2 is a number, expected a string");
  const std::string object = dir.write("o.json", "[{\"text\": \"a\"}]");
  BOOST_TEST(error_of([&] { load_texts(object); }) ==
             object + ": element 0 is an object, expected a string");
  const std::string blank = dir.write("b.json", "[\"a\", \"  \"]");
  BOOST_TEST(error_of([&] { load_texts(blank); }) == blank + ": element 1 is an empty string");
  const std::string top = dir.write("t.json", "{\"data\": []}");
  BOOST_TEST(error_of([&] { load_texts(top); }) ==
             top + ": expected a JSON array of strings, found an object");
}

BOOST_AUTO_TEST_CASE(empty_datasets_are_errors) {
  TempDir dir;
  const std::string json = dir.write("e.json", " [ ] ");
  BOOST_TEST(error_of([&] { load_texts(json); }) == json + ": no examples");
  const std::string text = dir.write("e.txt", "\n  \n\t\n");
  BOOST_TEST(error_of([&] { load_texts(text); }) == text + ": no examples");
  const std::string nothing = dir.write("z.txt", "");
  BOOST_TEST(error_of([&] { load_texts(nothing); }) == nothing + ": no examples");
}

BOOST_AUTO_TEST_CASE(batch_layout_pads_inputs_and_ignores_targets) {
  const std::vector<Ids> seqs{{5, 6, 7, 8}, {9, 4}, {3}, {10, 11, 12}};
  const std::vector<Batch> batches = make_batches(seqs, 2, 8, /*pad_id=*/0, nullptr);
  // {3} has no target and is dropped; the rest keep their order.
  BOOST_TEST_REQUIRE(batches.size() == 2u);
  BOOST_TEST(batches[0].batch == 2u);
  BOOST_TEST(batches[0].length == 3u);
  BOOST_TEST(batches[0].inputs == (Ids{5, 6, 7, 9, 0, 0}));
  BOOST_TEST(batches[0].targets == (Ids{6, 7, 8, 4, kIgnore, kIgnore}));
  BOOST_TEST(kIgnore == -1);
  // The last batch is short and as long as its own longest sequence.
  BOOST_TEST(batches[1].batch == 1u);
  BOOST_TEST(batches[1].length == 2u);
  BOOST_TEST(batches[1].inputs == (Ids{10, 11}));
  BOOST_TEST(batches[1].targets == (Ids{11, 12}));
  BOOST_TEST(count_trainable(seqs) == 3u);

  // A non-zero pad id goes where the padding is.
  const auto padded = make_batches({{1, 2}, {3, 4, 5}}, 4, 8, 7, nullptr);
  BOOST_TEST_REQUIRE(padded.size() == 1u);
  BOOST_TEST(padded[0].inputs == (Ids{1, 7, 3, 4}));
  BOOST_TEST(padded[0].targets == (Ids{2, kIgnore, 4, 5}));
}

BOOST_AUTO_TEST_CASE(batch_errors) {
  // max_seq_len 3 admits 4 tokens (3 inputs); 5 is too many.
  BOOST_CHECK_NO_THROW(make_batches({{1, 2, 3, 4}}, 1, 3, 0, nullptr));
  const std::string msg = error_of([] {
    make_batches({{1, 2}, {1, 2, 3, 4, 5}}, 1, 3, 0, nullptr);
  });
  BOOST_TEST(msg.starts_with("sequence 1 has 5 tokens; at most max_seq_len + 1 = 4 fit"), msg);
  BOOST_TEST(error_of([] {
               make_batches({{1, 2}}, 0, 3, 0, nullptr);
             }).find("batch size") != std::string::npos);
  BOOST_TEST(error_of([] {
               make_batches({{1, 2}}, 1, 3, -1, nullptr);
             }).find("pad id") != std::string::npos);
  // Nothing trainable gives no batches rather than an empty one.
  BOOST_TEST(make_batches({{1}, {}}, 2, 3, 0, nullptr).empty());
}

BOOST_AUTO_TEST_CASE(shuffling_is_seeded_and_covers_every_sequence) {
  const std::vector<Ids> seqs = numbered_sequences(40);
  Ids identity(40);
  std::iota(identity.begin(), identity.end(), 0);
  BOOST_TEST(first_tokens(make_batches(seqs, 3, 16, 0, nullptr)) == identity);

  Rng a(42), b(42), c(43);
  const Ids order_a = first_tokens(make_batches(seqs, 3, 16, 0, &a));
  const Ids order_b = first_tokens(make_batches(seqs, 3, 16, 0, &b));
  const Ids order_c = first_tokens(make_batches(seqs, 3, 16, 0, &c));
  BOOST_TEST(order_a == order_b);
  BOOST_TEST(order_a != order_c);
  BOOST_TEST(order_a != identity);
  // Same generator, next epoch: a new order.
  const Ids next_epoch = first_tokens(make_batches(seqs, 3, 16, 0, &a));
  BOOST_TEST(next_epoch != order_a);

  for (const Ids& order : {order_a, order_c, next_epoch}) {
    Ids sorted = order;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST(sorted == identity);  // each sequence exactly once
  }
  // Rows are whole sequences: every row's real tokens match its source.
  Rng d(7);
  for (const Batch& batch : make_batches(seqs, 4, 16, 0, &d)) {
    for (std::size_t r = 0; r < batch.batch; ++r) {
      const Ids& s = seqs[static_cast<std::size_t>(batch.inputs[r * batch.length])];
      for (std::size_t t = 0; t < batch.length; ++t) {
        const bool real = t + 1 < s.size();
        BOOST_TEST(batch.inputs[r * batch.length + t] == (real ? s[t] : 0));
        BOOST_TEST(batch.targets[r * batch.length + t] == (real ? s[t + 1] : kIgnore));
      }
    }
  }
}

// Data parallel: rank r of N builds only its rows of each batch (EpochBatches::batch),
// and they are exactly those rows of the whole batch one process builds, padded to the
// whole batch's length; the global count of targets comes without the other rows.
BOOST_AUTO_TEST_CASE(a_rank_builds_only_its_rows_of_each_batch) {
  std::vector<Ids> seqs = numbered_sequences(23);
  seqs.push_back({7});  // no target: dropped, as make_batches drops it
  for (const std::size_t batch_size : {1u, 4u, 5u}) {
    Rng a(11), b(11);
    const std::vector<Batch> whole = make_batches(seqs, batch_size, 16, /*pad_id=*/3, &a);
    const EpochBatches epoch(seqs, batch_size, 16, 3, &b);
    BOOST_TEST_REQUIRE(epoch.size() == whole.size());
    BOOST_TEST(a.save() == b.save());  // the same draws: the next epoch's order follows
    for (std::size_t k = 0; k < whole.size(); ++k) {
      const auto real = std::count_if(whole[k].targets.begin(), whole[k].targets.end(),
                                      [](std::int32_t t) { return t != kIgnore; });
      BOOST_TEST(epoch.targets(k) == std::size_t(real));
      BOOST_TEST(epoch.rows(k) == whole[k].batch);
      for (const std::size_t ranks : {1u, 2u, 3u, 7u}) {
        std::size_t rows = 0;
        for (std::size_t r = 0; r < ranks; ++r) {
          const Batch mine = epoch.batch(k, r, ranks);
          const Batch expected = rows_of_whole_batch(whole[k], r, ranks);
          BOOST_TEST(mine.batch == expected.batch);
          BOOST_TEST(mine.length == whole[k].length);
          BOOST_TEST(mine.inputs == expected.inputs);
          BOOST_TEST(mine.targets == expected.targets);
          const RowRange range = rank_rows(whole[k].batch, r, ranks);
          BOOST_TEST(range.first == rows);  // contiguous, in rank order
          BOOST_TEST(range.count == mine.batch);
          rows += mine.batch;
        }
        BOOST_TEST(rows == whole[k].batch);  // every row once
      }
    }
  }
}

// The shipped corpus loads, tokenizes without unknowns, and fits the default model.
BOOST_AUTO_TEST_CASE(shipped_corpus) {
  const std::string root = STRATA_SOURCE_DIR;
  const Texts pretraining = load_texts(root + "/data/pretraining.json");
  const Texts chat = load_texts(root + "/data/chat.json");
  BOOST_TEST(pretraining.size() >= 30u);
  BOOST_TEST(chat.size() >= 60u);

  Texts all = pretraining;
  all.insert(all.end(), chat.begin(), chat.end());
  const WordTokenizer tokenizer = WordTokenizer::build(all);
  BOOST_TEST_MESSAGE("corpus: " << pretraining.size() << " sentences, " << chat.size()
                                << " chat pairs, vocabulary " << tokenizer.size());
  BOOST_TEST(tokenizer.size() >= 400u);
  BOOST_TEST(tokenizer.size() <= 800u);

  std::set<std::string> questions;
  for (const auto& text : all) {
    const Encoded e = tokenizer.encode(text);
    BOOST_TEST(e.unknown.empty());
    BOOST_TEST(e.ids.size() < 40u, text);
    BOOST_TEST(e.ids.back() == tokenizer.eos_id(), text);
    BOOST_TEST(text.ends_with(" </s>"), text);
  }
  for (const auto& text : chat) {
    BOOST_TEST(text.starts_with("User: "), text);
    const std::size_t split = text.find("? Assistant: ");
    BOOST_TEST_REQUIRE(split != std::string::npos, text);
    BOOST_TEST(questions.insert(text.substr(0, split + 1)).second, "repeated: " << text);
  }
  // No question is a prefix of another (a prompt must not already be half an answer).
  for (const auto& q : questions)
    for (const auto& r : questions)
      if (q != r) BOOST_TEST(!r.starts_with(q.substr(0, q.size() - 1)), q << " / " << r);
}

BOOST_AUTO_TEST_SUITE_END()
