// Run directories and interruptions: the lock (one process per directory), what a new
// run refuses to overwrite, which temporaries may be deleted, a stop requested between
// steps, the data fingerprint and the finite-weights check of checkpoints, and the
// signal handler (first signal: a flag; second: death by that signal).
#include "training/run_directory.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "framework/errors.hpp"
#include "framework/files.hpp"
#include "framework/signals.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "training/checkpoint.hpp"
#include "training/trainer.hpp"

using namespace strata;
using strata::testing::error_of;
using strata::testing::TempDir;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const char* kSentences =
    "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
    " \"birds sing at dawn </s>\", \"rain falls from grey clouds </s>\"]";

std::string run_yaml(const std::string& data) {
  return "seed: 7\n"
         "model:\n"
         "  max_seq_len: 16\n"
         "  layers:\n"
         "    - {type: Embedding, dim: 8}\n"
         "    - {type: TransformerBlock, name: blocks, repeat: 1, dim: 8, hidden: 16}\n"
         "    - {type: OutputProjection}\n"
         "optimizer: {type: Adam, lr: 0.01}\n"
         "training:\n"
         "  phases:\n"
         "    - {name: facts, data: " +
         data + ", epochs: 3, batch: 1, shuffle: true}\n";
}

TrainResult train_run(const std::string& yaml, const std::string& out,
                      std::function<bool()> stop = nullptr) {
  LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "test.yaml"));
  auto optimizer = make_optimizer<float>(lm.config.optimizer);
  TrainOptions options;
  options.out_dir = out;
  options.stop_requested = std::move(stop);
  return train(lm, *optimizer, options);
}

// Runs `body` in a child process; returns its wait status.
template <class F>
int in_child(F&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(run_directory)

BOOST_AUTO_TEST_CASE(a_locked_directory_is_refused_naming_the_holder) {
  TempDir dir("lock");
  const RunDirectoryLock held = lock_run_directory(dir.path.string());
  // flock locks belong to an open file description: a second open conflicts even here.
  const std::string message = error_of([&] { lock_run_directory(dir.path.string()); });
  BOOST_TEST(
      contains(message, " is in use by another process (pid " + std::to_string(::getpid()) + ": "));
  BOOST_TEST(contains(message, "wait for it to end, or pick another --out"));
  BOOST_TEST(contains(error_of([&] { claim_new_run_directory(dir.path.string()); }),
                      "is in use by another process"));
}

BOOST_AUTO_TEST_CASE(the_lock_is_released_with_its_holder) {
  TempDir dir("lock");
  { const RunDirectoryLock held = lock_run_directory(dir.path.string()); }
  BOOST_CHECK_NO_THROW(lock_run_directory(dir.path.string()));
  // And by a process that dies without releasing it.
  const int status = in_child([&] {
    static RunDirectoryLock lock = lock_run_directory(dir.path.string());
    ::kill(::getpid(), SIGKILL);
  });
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_CHECK_NO_THROW(lock_run_directory(dir.path.string()));
}

BOOST_AUTO_TEST_CASE(a_new_run_refuses_a_directory_with_anything_in_it) {
  TempDir dir("claim");
  const std::string out = dir.file("run");
  fs::create_directories(out);
  dir.write("run/metrics.csv", "phase,epoch\n");
  const std::string message = error_of([&] { claim_new_run_directory(out); });
  BOOST_TEST(contains(message, out + " is not empty (metrics.csv) and holds no checkpoint to "
                                     "resume: pick another --out, or remove what is there"));
  BOOST_TEST(read_file(out + "/metrics.csv") == "phase,epoch\n");
  fs::create_directories(out + "/checkpoint");
  BOOST_TEST(contains(error_of([&] { claim_new_run_directory(out); }),
                      out + " already holds a checkpoint: pass --resume " + out));
}

BOOST_AUTO_TEST_CASE(a_new_run_takes_an_empty_or_missing_directory_and_leaves_none_unused) {
  TempDir dir("claim");
  fs::create_directories(dir.file("empty"));
  BOOST_CHECK_NO_THROW(claim_new_run_directory(dir.file("empty")));
  BOOST_TEST(fs::is_directory(dir.file("empty")));  // not ours to remove
  {
    const RunDirectoryLock lock = claim_new_run_directory(dir.file("a/b/run"));
    BOOST_TEST(fs::is_directory(dir.file("a/b/run")));
  }
  BOOST_TEST(!fs::exists(dir.file("a")));  // created for a run that wrote nothing
  {
    const RunDirectoryLock lock = claim_new_run_directory(dir.file("kept"));
    dir.write("kept/metrics.csv", "x\n");
  }
  BOOST_TEST(read_file(dir.file("kept/metrics.csv")) == "x\n");
}

BOOST_AUTO_TEST_CASE(an_unwritable_directory_is_refused_before_training) {
  TempDir dir("claim");
  dir.write("afile", "a regular file\n");
  BOOST_TEST(contains(error_of([&] { claim_new_run_directory(dir.file("afile/run")); }),
                      "afile/run: cannot create directory (Not a directory): pick another --out"));
  BOOST_TEST(contains(error_of([&] { claim_new_run_directory("/proc/strata-run"); }),
                      "/proc/strata-run: cannot create directory"));
}

BOOST_AUTO_TEST_CASE(only_strata_temporaries_of_dead_processes_are_removed) {
  TempDir dir("stale");
  const std::string dead = "999999999";  // above pid_max: no such process
  dir.write("notes.tmp-" + dead, "mine\n");
  fs::create_directories(dir.file("checkpoint.tmp-" + dead));
  dir.write("checkpoint.tmp-" + dead + "/data.txt", "also mine\n");
  fs::create_directories(dir.file("theirs/checkpoint.tmp-" + dead));
  dir.write("theirs/checkpoint.tmp-" + dead + "/.strata-checkpoint", "");
  dir.write("theirs/checkpoint.tmp-" + dead + "/model.npz", "half");
  fs::create_directories(dir.file("theirs/checkpoint.tmp-1"));  // pid 1 runs: not stale
  dir.write("theirs/checkpoint.tmp-1/.strata-checkpoint", "");
  remove_stale_temporaries(dir.path.string());
  remove_stale_temporaries(dir.file("theirs"));
  BOOST_TEST(read_file(dir.file("notes.tmp-" + dead)) == "mine\n");
  BOOST_TEST(read_file(dir.file("checkpoint.tmp-" + dead + "/data.txt")) == "also mine\n");
  BOOST_TEST(!fs::exists(dir.file("theirs/checkpoint.tmp-" + dead)));
  BOOST_TEST(fs::exists(dir.file("theirs/checkpoint.tmp-1")));
}

BOOST_AUTO_TEST_CASE(a_stop_request_saves_the_position_after_the_step_and_resumes_bit_exactly) {
  TempDir dir("stop");
  const std::string yaml = run_yaml(dir.write("facts.json", kSentences));
  const TrainResult whole = train_run(yaml, dir.file("whole"));
  int asked = 0;  // stop after the 6th step, inside the second epoch
  const TrainResult cut = train_run(yaml, dir.file("cut"), [&] { return ++asked == 6; });
  BOOST_TEST(cut.interrupted);
  BOOST_TEST(!cut.finished);
  BOOST_TEST(cut.steps == 6);
  BOOST_TEST(load_checkpoint(dir.file("cut")).position.step == 6);
  const TrainResult rest = strata::testing::resume_training(dir.file("cut"));
  BOOST_TEST(rest.finished);
  std::vector<double> a, b;
  for (const auto& e : whole.epochs) a.push_back(e.loss);
  for (const auto* r : {&cut, &rest})
    for (const auto& e : r->epochs) b.push_back(e.loss);
  BOOST_TEST(a == b);  // bit for bit
  BOOST_TEST(read_file(dir.file("whole/checkpoint/model.npz")) ==
             read_file(dir.file("cut/checkpoint/model.npz")));
}

BOOST_AUTO_TEST_CASE(resume_refuses_data_that_changed_and_reads_checkpoints_without_the_record) {
  TempDir dir("data");
  const std::string data = dir.write("facts.json", kSentences);
  int asked = 0;
  train_run(run_yaml(data), dir.file("run"), [&] { return ++asked == 2; });
  Checkpoint c = load_checkpoint(dir.file("run"));
  BOOST_REQUIRE(c.data.size() == 1);
  BOOST_TEST(c.data[0].examples == 4u);
  dir.write("facts.json",
            "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
            " \"birds sing at dawn </s>\", \"rain falls from gray clouds </s>\"]");
  const std::string message = error_of([&] { strata::testing::resume_training(dir.file("run")); });
  BOOST_TEST(
      contains(message, data + ": the data of phase \"facts\" changed since the checkpoint"));
  BOOST_TEST(contains(message, "Put the data back as it was"));
  // A checkpoint saved before the record existed (no "data" key) resumes without it.
  c.data.clear();
  save_checkpoint(dir.file("run"), c);
  std::string manifest = read_file(dir.file("run/checkpoint/manifest.json"));
  const std::string key = " \"data\": [],\n";
  BOOST_REQUIRE(manifest.find(key) != std::string::npos);
  manifest.erase(manifest.find(key), key.size());
  write_file_atomic(dir.file("run/checkpoint/manifest.json"), manifest);
  BOOST_TEST(load_checkpoint(dir.file("run")).data.empty());
  BOOST_TEST(strata::testing::resume_training(dir.file("run")).finished);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_with_non_finite_weights_is_refused_naming_them) {
  TempDir dir("finite");
  int asked = 0;
  train_run(run_yaml(dir.write("facts.json", kSentences)), dir.file("run"),
            [&] { return ++asked == 1; });
  Checkpoint c = load_checkpoint(dir.file("run"));
  c.parameters[1].data[3] = std::numeric_limits<float>::quiet_NaN();
  save_checkpoint(dir.file("run"), c);  // sizes and CRCs match: only the values are wrong
  const std::string message = error_of([&] { load_checkpoint(dir.file("run")); });
  BOOST_TEST(contains(message, "model.npz: \"" + c.parameters[1].name +
                                   "\" holds a non-finite value (nan at index 3)"));
  c.parameters[1].data[3] = 0;
  c.optimizer_state[0].data[0] = -std::numeric_limits<float>::infinity();
  save_checkpoint(dir.file("run"), c);
  BOOST_TEST(contains(error_of([&] { load_checkpoint(dir.file("run")); }),
                      "optimizer.npz: \"" + c.optimizer_state[0].name + "\" holds a non-finite"));
}

BOOST_AUTO_TEST_CASE(first_signal_sets_the_flag_second_kills_by_that_signal) {
  const int status = in_child([] {
    const StopSignals signals;
    ::raise(SIGTERM);
    if (StopSignals::received() != SIGTERM) ::_exit(3);
    ::raise(SIGINT);
    ::_exit(4);  // not reached: the second signal kills
  });
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_TEST((WIFSIGNALED(status) ? WTERMSIG(status) : -WEXITSTATUS(status)) == SIGINT);
  // Outside a StopSignals scope the previous dispositions are back.
  const int after = in_child([] {
    { const StopSignals signals; }
    ::raise(SIGHUP);
    ::_exit(5);
  });
  BOOST_TEST((WIFSIGNALED(after) && WTERMSIG(after) == SIGHUP));
}

BOOST_AUTO_TEST_SUITE_END()
