// The classification task (tasks/): CSV and .npy loaders and their errors, the seeded
// split, the task's config errors, resume, and the digits MLP's held-out accuracy.
#include "tasks/classification.hpp"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>

#include "framework/files.hpp"
#include "test_support.hpp"
#include "training/checkpoint.hpp"

using namespace strata;
using strata::testing::error_of;
using strata::testing::TempDir;

namespace {

// An .npy file of `values` stored as numpy type `descr` (little-endian) and `shape`.
template <class V>
std::string npy(const std::string& descr, const std::string& shape, const std::vector<V>& values) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(V));
  return out;
}

// A config of the classification task on `data` (a CSV of 2 features, 3 classes).
std::string classifier_yaml(const std::string& data, const std::string& extra_layer = "") {
  return "seed: 7\n"
         "task: {type: classification, data: " +
         data +
         ", features: 2, classes: 3,\n"
         "       validation_fraction: 0.25}\n"
         "model:\n"
         "  layers:\n"
         "    - {type: Linear, out: 8}\n"
         "    - {type: ReLU}\n"
         "    - {type: Dropout, rate: 0.2}\n" +
         extra_layer +
         "    - {type: Linear, out: 3}\n"
         "optimizer: {type: Adam, lr: 1.0e-2}\n"
         "training:\n"
         "  phases:\n"
         "    - {name: a, epochs: 3, batch: 4, shuffle: true}\n"
         "    - {name: b, epochs: 2, batch: 3, shuffle: true, lr: 3.0e-3}\n";
}

// 40 rows: three clusters in the plane.
std::string clusters_csv() {
  std::string text = "x,y,label\n";
  for (int i = 0; i < 40; ++i) {
    const int label = i % 3;
    text += std::to_string(label * 2.0 + 0.1 * (i % 5)) + "," +
            std::to_string(1.0 - label + 0.05 * (i % 7)) + "," + std::to_string(label) + "\n";
  }
  return text;
}

// metrics.csv's rows without their timings: phase, epoch, step, loss, lr.
std::vector<std::string> losses(const std::string& run_dir) {
  std::vector<std::string> rows;
  std::istringstream in(read_file(run_dir + "/metrics.csv"));
  for (std::string line; std::getline(in, line);) {
    std::size_t end = 0;
    for (int field = 0; field < 5; ++field) end = line.find(',', end) + 1;
    rows.push_back(line.substr(0, end));
  }
  return rows;
}

TrainResult train_classifier(const std::string& yaml, const std::string& out,
                             std::int64_t stop_after = -1) {
  Run run = Run::start(parse_run_config(yaml, "test.yaml"));
  BOOST_REQUIRE(run.classifier());
  TrainOptions options;
  options.out_dir = out;
  options.stop_after_steps = stop_after;
  return run.train(options);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(classification)

BOOST_AUTO_TEST_CASE(csv_rows_with_header_and_blank_lines) {
  const LabeledRows rows = parse_csv_rows("a,b,label\n1,2.5,0\n\n-3, 4e1 ,2\r\n", "t.csv", 2, 3);
  BOOST_TEST(rows.rows() == 2u);
  BOOST_TEST(rows.x == (std::vector<float>{1, 2.5f, -3, 40}), boost::test_tools::per_element());
  BOOST_TEST(rows.y == (std::vector<std::int32_t>{0, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(csv_bad_rows_name_file_and_line) {
  auto error = [](const std::string& text) {
    return error_of([&] { parse_csv_rows(text, "t.csv", 2, 3); });
  };
  BOOST_TEST(error("1,2,0\n1,2\n") ==
             "t.csv:2: expected 3 fields (2 features, then the label), got 2");
  BOOST_TEST(error("1,2,0\n1,2,0,4\n") ==
             "t.csv:2: expected 3 fields (2 features, then the label), got 4");
  BOOST_TEST(error("1,2,0\n1,abc,0\n") == "t.csv:2: field 2: \"abc\" is not a number");
  BOOST_TEST(error("1,2,0\n1,,0\n") == "t.csv:2: field 2: \"\" is not a number");
  BOOST_TEST(error("1,2,0\nnan,2,0\n") == "t.csv:2: field 1: feature nan is not a finite float");
  BOOST_TEST(error("1,2,0\n1,1e39,0\n") == "t.csv:2: field 2: feature 1e39 is not a finite float");
  BOOST_TEST(error("1,2,3\n") ==
             "t.csv:1: label 3 is not a class: expected a whole number in [0, 3) (task.classes)");
  BOOST_TEST(error("1,2,-1\n") ==
             "t.csv:1: label -1 is not a class: expected a whole number in [0, 3) (task.classes)");
  BOOST_TEST(error("1,2,1.5\n") ==
             "t.csv:1: label 1.5 is not a class: expected a whole number in [0, 3) (task.classes)");
  BOOST_TEST(error("x,y,label\n") == "t.csv: no data rows");
  BOOST_TEST(error("") == "t.csv: no data rows");
}

BOOST_AUTO_TEST_CASE(npy_rows_any_numeric_type) {
  TempDir dir("npy");
  const std::string x = dir.write("x.npy", npy<double>("<f8", "(2, 2)", {1, 2, 3, 4}));
  const std::string y = dir.write("y.npy", npy<std::int64_t>("<i8", "(2,)", {2, 0}));
  const LabeledRows rows = load_npy_rows(x, y, 2, 3);
  BOOST_TEST(rows.x == (std::vector<float>{1, 2, 3, 4}), boost::test_tools::per_element());
  BOOST_TEST(rows.y == (std::vector<std::int32_t>{2, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(npy_bad_inputs) {
  TempDir dir("npy");
  const std::string x = dir.write("x.npy", npy<float>("<f4", "(2, 2)", {1, 2, 3, 4}));
  const std::string nan = dir.write(
      "nan.npy", npy<float>("<f4", "(2, 2)", {1, 2, std::numeric_limits<float>::quiet_NaN(), 4}));
  const std::string y = dir.write("y.npy", npy<std::int32_t>("<i4", "(2,)", {0, 1}));
  const std::string y3 = dir.write("y3.npy", npy<std::int32_t>("<i4", "(3,)", {0, 1, 2}));
  const std::string big = dir.write("big.npy", npy<std::int32_t>("<i4", "(2,)", {0, 7}));
  const std::string text = dir.write("text.npy", npy<char>("<U1", "(2,)", {'a', 'b'}));
  BOOST_TEST(error_of([&] { load_npy_rows(x, y, 3, 3); }) ==
             x + ": expected features of shape (rows, 3) (task.features), got 2 dimensions (2, 2)");
  BOOST_TEST(error_of([&] { load_npy_rows(x, y3, 2, 3); }) ==
             y3 + ": expected labels of shape (2,), one per row of " + x);
  BOOST_TEST(error_of([&] { load_npy_rows(nan, y, 2, 3); }) ==
             nan + ": row 1, feature 0 is not finite");
  BOOST_TEST(
      error_of([&] { load_npy_rows(x, big, 2, 3); }) ==
      big + ": row 1: label 7 is not a class: expected a whole number in [0, 3) (task.classes)");
  BOOST_TEST(
      error_of([&] { load_npy_rows(x, text, 2, 3); }).starts_with(text + ": expected numbers"));
}

BOOST_AUTO_TEST_CASE(split_is_seeded_disjoint_and_complete) {
  const RowSplit a = split_rows(100, 0.2, 5), b = split_rows(100, 0.2, 5),
                 c = split_rows(100, 0.2, 6);
  BOOST_TEST(a.held_out.size() == 20u);
  BOOST_TEST(a.train.size() == 80u);
  BOOST_TEST(a.held_out == b.held_out, boost::test_tools::per_element());
  BOOST_TEST((a.held_out != c.held_out));
  std::vector<std::size_t> all = a.train;
  all.insert(all.end(), a.held_out.begin(), a.held_out.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) BOOST_TEST(all[i] == i);
  BOOST_TEST(split_rows(3, 0.01, 1).held_out.size() == 1u);  // a fraction above 0 holds one out
  BOOST_TEST(split_rows(3, 0, 1).held_out.empty());
}

BOOST_AUTO_TEST_CASE(config_errors_point_at_the_task) {
  auto error = [](const std::string& yaml) {
    return error_of([&] { Classifier::create(parse_run_config(yaml, "c.yaml")); });
  };
  const std::string base = classifier_yaml("d.csv");
  std::string npy_without_labels = base;
  npy_without_labels.replace(npy_without_labels.find("d.csv"), 5, "x.npy");
  BOOST_TEST(error(npy_without_labels) ==
             "c.yaml:2:36: task: a .npy data file holds the features only: give labels: "
             "LABELS.npy too");
  std::string wrong_type = base;
  wrong_type.replace(wrong_type.find("classification"), 14, "classifcation");
  BOOST_TEST(error(wrong_type).find("did you mean \"classification\"") != std::string::npos);
  std::string unknown_key = base;
  unknown_key.replace(unknown_key.find("features: 2"), 11, "featrues: 2");
  BOOST_TEST(error(unknown_key).find("unknown key \"featrues\" (did you mean \"features\"?)") !=
             std::string::npos);
  std::string wrong_output = base;
  wrong_output.replace(wrong_output.find("out: 3"), 6, "out: 4");
  BOOST_TEST(error(wrong_output) ==
             "c.yaml:5:3: model: the last layer's output is (*, 4); a classifier of 3 classes "
             "(task.classes) needs (*, 3)");
  std::string seq = base;
  seq.replace(seq.find("  layers:"), 9, "  max_seq_len: 8\n  layers:");
  BOOST_TEST(error(seq) ==
             "c.yaml:5:16: model: max_seq_len is for token-id input; this model's input is (*, "
             "2) (the task's feature rows)");
  std::string phase_data = base;
  phase_data.replace(phase_data.find("{name: a,"), 9, "{name: a, data: d.csv,");
  BOOST_TEST(error(phase_data).find("unknown key \"data\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(token_id_models_still_need_max_seq_len) {
  const ConfigNode model = ConfigNode::parse("layers:\n  - {type: Embedding, dim: 4}\n", "m.yaml");
  Rng rng(1);
  BOOST_TEST(error_of([&] { build_model<float>(model, 10, rng); }) ==
             "m.yaml:1:1: model: missing required key \"max_seq_len\" (integer: longest sequence "
             "the model accepts; a model of token ids needs it)");
}

BOOST_AUTO_TEST_CASE(data_errors_name_the_config_position) {
  TempDir dir("cls");
  const std::string data = dir.write("d.csv", "1,2,0\n3,4\n");
  const std::string message = error_of([&] { train_classifier(classifier_yaml(data), ""); });
  BOOST_TEST(message == "test.yaml:2:36: task.data: " + data +
                            ":2: expected 3 fields (2 features, then the label), got 2");
}

BOOST_AUTO_TEST_CASE(resume_continues_bit_exactly) {
  TempDir dir("cls");
  std::string yaml = classifier_yaml(dir.write("d.csv", clusters_csv()));
  yaml.replace(yaml.find("training:\n"), 10,
               "training:\n  checkpoint_every: 1\n");  // a kill keeps its step
  const TrainResult whole = train_classifier(yaml, dir.file("whole"));
  BOOST_TEST(whole.finished);
  // 30 training rows: phase a has 8 steps an epoch (24), phase b 10 (20).
  BOOST_TEST(whole.steps == 44);
  for (const std::int64_t stop : {5, 8, 27}) {
    const std::string out = dir.file("part" + std::to_string(stop));
    BOOST_TEST(!train_classifier(yaml, out, stop).finished);
    Run resumed = Run::resume(out);
    BOOST_TEST(resumed.checkpoint()->position.step == stop);
    TrainOptions options;
    options.out_dir = out;
    BOOST_TEST(resumed.train(options).finished);
    const Checkpoint a = load_checkpoint(dir.file("whole")), b = load_checkpoint(out);
    BOOST_REQUIRE(a.parameters.size() == b.parameters.size());
    for (std::size_t i = 0; i < a.parameters.size(); ++i)
      BOOST_TEST(a.parameters[i].data == b.parameters[i].data, boost::test_tools::per_element());
    BOOST_TEST(losses(dir.file("whole")) == losses(out), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(digits_mlp_reaches_96_percent) {
  // The shipped config as `strata train` runs it, on scripts/get_digits.sh's data.
  const std::filesystem::path root = STRATA_SOURCE_DIR;
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(root / "data/digits.csv"),
                        "data/digits.csv is missing: run scripts/get_digits.sh");
  const std::string cwd = std::filesystem::current_path();
  std::filesystem::current_path(root);  // the config's data path is relative to the repo
  RunConfig config = load_run_config("configs/digits_mlp.yaml");
  std::filesystem::current_path(cwd);
  config.task = parse_run_config(config.text, config.file).task;
  Classifier c = [&] {
    std::filesystem::current_path(root);
    Classifier built = Classifier::create(config);
    std::filesystem::current_path(cwd);
    return built;
  }();
  c.task.data = (root / c.task.data).string();
  auto optimizer = make_optimizer<float>(c.config.optimizer);
  BOOST_TEST(train(c, *optimizer, TrainOptions{}).finished);
  const ClassificationScore score =
      evaluate(c, load_classification_data(c.task, c.config.seed).held_out);
  BOOST_TEST(score.total == 359u);
  BOOST_TEST(score.accuracy() >= 0.96, score.correct << "/" << score.total);
}

BOOST_AUTO_TEST_SUITE_END()
