// strata_bench: Strata's side of the benchmark (bench/README.md), the counterpart of
// ../shared/bench/torch_reference.py. Each mode measures one workload through the
// library API and prints one JSON object per thread count on stdout (and appends it to
// --json FILE); `--verbose` adds a readable line per run on stderr.
//
//   single    batch 1, one optimizer step per sequence, on RustGPT's data (the trainer)
//   batched   batch B, padded batches with a loss mask, on RustGPT's data (the trainer)
//   scale     any d/hidden/layers/T/B/V on random tokens (the trainer): model GFLOP/s,
//             peak resident memory vs what parameters, grads, Adam moments and
//             activations need
//   generate  greedy generation from the RustGPT model, with the KV cache and without,
//             and the memory-bandwidth floor of a decoding step (generation_floor)
//   gemm      the SGEMM ceiling: strata::gemm (cblas_sgemm) on large shapes
//   smoke     every mode above at a tiny size, checked for sanity (the CTest; < 3 s)
//   info      the labels every record carries: CPU model, the ISA this build targets
//             (from the compiler's predefined macros), OpenBLAS's core
//
// Counting is torch_reference.py's: training tokens = sum over sequences of (length - 1),
// sec/epoch = median over the timed epochs after the warm-up ones; model FLOP per token
// = 6 * P_nonemb + 12 * layers * T * d (P_nonemb: every parameter but the Embedding
// layers' token and position tables). Training goes through strata::train(), the code
// `strata train` runs, so the numbers move with the trainer's optimisations.
//
// Threads: --threads is a comma list; each entry is one run at n threads: training and
// generation as strata runs them (config.threads = n, or a ThreadingScope: Strata's pool
// at n, BLAS at 1), the SGEMM ceiling with OpenBLAS itself at n.

#include <dlfcn.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "framework/blas.hpp"
#include "framework/distributed.hpp"
#include "framework/errors.hpp"
#include "framework/parallel.hpp"
#include "optimizers/optimizer.hpp"
#include "tasks/generator.hpp"
#include "tasks/language_model.hpp"
#include "tasks/run.hpp"
#include "text/word_tokenizer.hpp"
#include "training/trainer.hpp"

#ifndef STRATA_SOURCE_DIR
#define STRATA_SOURCE_DIR "."
#endif

namespace {

using strata::LanguageModel;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode = "batched";
  std::string threads = "1";
  std::string config = std::string(STRATA_SOURCE_DIR) + "/configs/rustgpt.yaml";
  // RustGPT's two files (run.sh passes ../shared/reference/rustgpt/...); the defaults are
  // the project's own corpus so that the smoke test needs nothing outside the tree.
  std::string pretrain = std::string(STRATA_SOURCE_DIR) + "/data/pretraining.json";
  std::string chat = std::string(STRATA_SOURCE_DIR) + "/data/chat.json";
  std::string data = "chat";  // single/batched: which file trains (pretrain | chat)
  std::size_t batch = 16;
  double lr = 5e-4;  // torch_reference.py's --lr (single/batched/scale)
  std::int64_t epochs = 10, warmup_epochs = 1;
  std::size_t d = 512, hidden = 2048, layers = 6, seq_len = 256, vocab = 4096;
  std::int64_t steps = 8, warmup_steps = 2;
  std::size_t gen_tokens = 40, gen_reps = 7;
  bool gen_floor = true;  // generate: also measure the memory-bandwidth floor
  std::string prompt = "User: How do mountains form?";  // torch_reference.py's first prompt
  std::string shapes = "2048x2048x2048";
  double min_time = 0.3;
  std::size_t reps = 5;
  // The one seed of weights, shuffling and random tokens; unset: the config's own seed
  // (single/batched/generate), 0 (scale's tokens and weights), 1 (gemm's matrices).
  std::optional<std::uint64_t> seed;
  std::string json;
  bool verbose = false;
};

// OpenBLAS's cblas_sgemm, looked up at run time (the library links OpenBLAS privately). The ceiling
// is one call with OpenBLAS's own threads: strata::gemm cuts a product this large into blocks (the
// same cut at any thread count, framework/blas.cpp), each packed on its own, which is the path
// Strata trains with but not the most the BLAS can do.
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                       float, float*, int);
constexpr int kRowMajor = 101, kNoTrans = 111;  // CBLAS_ORDER / CBLAS_TRANSPOSE values
Sgemm cblas_sgemm() {
  auto fn = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "cblas_sgemm"));
  if (!fn) throw strata::Error("cblas_sgemm not found in the loaded BLAS");
  return fn;
}

// The instruction set this program (and the library, built with the same -march) was
// compiled for, from the compiler's predefined macros.
std::string build_isa() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__AVX__)
  return "avx";
#elif defined(__SSE4_2__)
  return "sse4.2";
#else
  return "sse2";
#endif
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      return colon == std::string::npos ? line
                                        : line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown";
}

// The SGEMM ceiling is OpenBLAS's own: its threads, not Strata's pool.
void apply_threads(int n) { strata::set_blas_threads(n); }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<int> parse_threads(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    const int n = std::stoi(item);
    if (n < 1 || n > 64) throw strata::Error("--threads: " + item + " is not in 1..64");
    out.push_back(n);
  }
  if (out.empty()) throw strata::Error("--threads is empty");
  return out;
}

std::size_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::size_t(u.ru_maxrss) * 1024;  // Linux reports kB
}

// Cores used by other processes while a run executes, as torch_reference.py's
// LoadMonitor: (machine busy core-seconds - this process's CPU seconds) / wall seconds.
class LoadMonitor {
 public:
  LoadMonitor() : stat0_(read_stat()), cpu0_(own_cpu()), t0_(Clock::now()) {}
  Json finish() const {
    const auto [total1, idle1] = read_stat();
    const double wall = seconds_since(t0_);
    const double ncpu = double(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    const double dt = double(std::max<long long>(1, total1 - stat0_.first));
    const double busy = ncpu * (1.0 - double(idle1 - stat0_.second) / dt) * wall;
    const double own = own_cpu() - cpu0_;
    return {{"own_cores_during", own / wall},
            {"other_cores_during", std::max(0.0, (busy - own) / wall)},
            {"run_wall_s", wall}};
  }

 private:
  static std::pair<long long, long long> read_stat() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    in >> cpu;
    long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0}, total = 0;
    for (long long& x : v) in >> x, total += x;
    return {total, v[3] + v[4]};
  }
  static double own_cpu() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  }
  std::pair<long long, long long> stat0_;
  double cpu0_;
  Clock::time_point t0_;
};

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------

// The RustGPT model of --config with its vocabulary built from both of RustGPT's files
// (as the recipe, and torch_reference.py, build it).
LanguageModel rustgpt_model(const Args& a) {
  strata::RunConfig config =
      strata::load_run_config(a.config, {{"pretrain", a.pretrain}, {"instruct", a.chat}});
  if (a.seed) config.seed = *a.seed;
  return LanguageModel::create(std::move(config));
}

// Parameters outside the Embedding layers (token and position tables).
std::size_t nonembedding_parameters(const strata::Model<float>& model) {
  std::size_t emb = 0;
  for (const auto& layer : model.layers())
    if (layer->type() == "Embedding")
      for (const strata::Parameter<float>* p : layer->parameters()) emb += p->value.size();
  return model.parameter_count() - emb;
}

std::int64_t flops_per_token(const strata::Model<float>& model, std::size_t layers, std::size_t T,
                             std::size_t d) {
  return 6 * std::int64_t(nonembedding_parameters(model)) + 12 * std::int64_t(layers * T * d);
}

// Runs the trainer on `lm` (one phase, already set in lm.config) and returns its epochs.
strata::TrainResult train_phase(LanguageModel& lm) {
  strata::Run run = strata::Run::of(std::move(lm));
  const strata::TrainResult result = run.train(strata::TrainOptions{});
  lm = std::move(*run.language_model());
  return result;
}

// ---------------------------------------------------------------------------------
// modes
// ---------------------------------------------------------------------------------

// single / batched: RustGPT's model, one phase over one of its files, batch B.
Json run_epochs(const Args& a, int threads, bool single) {
  LanguageModel lm = rustgpt_model(a);
  lm.config.threads = threads;
  if (lm.config.phases.empty()) throw strata::Error(a.config + ": no training phases");
  strata::PhaseConfig phase = lm.config.phases.front();
  phase.name = a.data;
  phase.data = a.data == "pretrain" ? a.pretrain : a.chat;
  phase.format = "json";
  phase.batch = single ? 1 : a.batch;
  phase.epochs = a.warmup_epochs + a.epochs;
  phase.shuffle = false;
  phase.schedule = strata::LrSchedule{};
  phase.schedule.lr = a.lr;
  lm.config.phases = {phase};
  const strata::TrainResult r = train_phase(lm);
  std::vector<double> timed;
  for (std::size_t e = std::size_t(a.warmup_epochs); e < r.epochs.size(); ++e)
    timed.push_back(r.epochs[e].seconds);
  const double med = median(timed);
  const std::size_t tokens = r.epochs.front().tokens;
  const std::size_t steps_per_epoch = std::size_t(r.steps) / r.epochs.size();
  return {{"mode", single ? "single" : "batched"},
          {"seed", lm.config.seed},
          {"data", a.data},
          {"batch", phase.batch},
          {"threads", threads},
          {"vocab", lm.tokenizer->size()},
          {"params", lm.model.parameter_count()},
          {"tokens_per_epoch", tokens},
          {"steps_per_epoch", steps_per_epoch},
          {"epochs_timed", timed.size()},
          {"sec_per_epoch_median", med},
          {"sec_per_epoch_min", *std::min_element(timed.begin(), timed.end())},
          {"sec_per_epoch_max", *std::max_element(timed.begin(), timed.end())},
          {"ms_per_step_median", 1e3 * med / double(steps_per_epoch)},
          {"tokens_per_s", double(tokens) / med},
          {"loss_first_epoch", r.epochs.front().loss},
          {"loss_last_epoch", r.epochs.back().loss},
          {"epochs_trained", r.epochs.size()},
          {"peak_rss_mb", double(peak_rss_bytes()) / 1e6}};
}

// What training at this size needs at the least, in floats: parameters, their grads and
// Adam's two moments (4 P), plus the activations backward must read. Per block of the
// post-norm RustGPT layout (N = B T positions, h heads):
//   block input x (N d, for dW_qkv) + Q, K, V (3 N d) + attention probabilities (B h T^2)
//   + LayerNorm 1 xhat and 1/std (N d + N) + FFN input y (N d, for dW1)
//   + FFN hidden activation (N H; the ReLU output, whose sign is also its mask)
//   + LayerNorm 2 xhat and 1/std (N d + N)          = 7 N d + N H + B h T^2 + 2 N
// and once: the last block's output (N d, for dW_out), the logits (N V, reused in place
// for their gradient) and the ids (N). Transient gradient buffers are not counted.
Json memory_need(std::size_t params, std::size_t B, std::size_t T, std::size_t d, std::size_t H,
                 std::size_t L, std::size_t V, std::size_t heads) {
  const double N = double(B * T);
  const double per_block = 7 * N * double(d) + N * double(H) + double(B * heads * T * T) + 2 * N;
  const double acts = double(L) * per_block + N * double(d) + N * double(V) + N;
  const double bytes = 4.0;
  return {{"need_params_mb", bytes * double(params) / 1e6},
          {"need_grads_mb", bytes * double(params) / 1e6},
          {"need_adam_mb", 2 * bytes * double(params) / 1e6},
          {"need_activations_mb", bytes * acts / 1e6},
          {"need_total_mb", bytes * (4.0 * double(params) + acts) / 1e6}};
}

// scale: random tokens at any size, through the trainer. The vocabulary is <pad> <unk>
// </s> plus words w0..w(V-4) (V ids in all); one phase of `warmup + steps` epochs of one
// batch of B random sequences of T + 1 words each, so every epoch is one optimizer step.
Json run_scale(const Args& a, int threads) {
  if (a.vocab < 4) throw strata::Error("--vocab must be at least 4");
  std::vector<std::string> tokens = {"<pad>", "<unk>", "</s>"};
  for (std::size_t i = 0; i + 3 < a.vocab; ++i) tokens.push_back("w" + std::to_string(i));
  const std::uint64_t seed = a.seed.value_or(0);
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<std::size_t> word(3, a.vocab - 1);
  // Under mpirun the ranks share one file (their configs must be the same, path
  // included), named after mpirun's pid and written by rank 0 before the others read it.
  strata::Distributed& world = strata::Distributed::world();
  const long id = world.parallel() ? long(::getppid()) : long(::getpid());
  const std::filesystem::path data = std::filesystem::temp_directory_path() /
                                     ("strata_bench_scale_" + std::to_string(id) + ".json");
  if (world.rank() == 0) {
    std::ofstream out(data);
    out << "[";
    for (std::size_t s = 0; s < a.batch; ++s) {
      out << (s ? ",\n\"" : "\"");
      for (std::size_t t = 0; t <= a.seq_len; ++t) out << (t ? " " : "") << tokens[word(gen)];
      out << "\"";
    }
    out << "]\n";
  }
  double written = 0;
  world.sum(&written, 1);  // a barrier: the file is complete
  std::ostringstream yaml;
  yaml << "seed: " << seed << "\nthreads: " << threads << "\nmodel:\n  max_seq_len: " << a.seq_len
       << "\n  layers:\n    - {type: Embedding, dim: " << a.d
       << "}\n    - {type: TransformerBlock, name: blocks, repeat: " << a.layers << ", dim: " << a.d
       << ", hidden: " << a.hidden << ", heads: 1, norm: post}\n    - {type: OutputProjection}\n"
       << "optimizer: {type: Adam, lr: " << a.lr
       << ", betas: [0.9, 0.999], eps: 1.0e-8, clip_norm: 5.0}\n"
       << "training:\n  phases:\n    - {name: scale, data: \"" << data.string()
       << "\", format: json, epochs: " << (a.warmup_steps + a.steps) << ", batch: " << a.batch
       << "}\n";
  strata::TrainResult r;
  LanguageModel lm{
      strata::parse_run_config(yaml.str(), "<scale>"),
      std::make_unique<strata::WordTokenizer>(strata::WordTokenizer::from_tokens(tokens)),
      strata::Rng(seed),
      {},
      {}};
  try {
    lm.model = strata::build_model<float>(lm.config.model, std::int64_t(a.vocab), lm.rng);
    r = train_phase(lm);
  } catch (...) {
    if (world.rank() == 0) std::filesystem::remove(data);
    throw;
  }
  if (world.rank() == 0) std::filesystem::remove(data);  // every rank read it before step 1
  std::vector<double> timed, losses;
  for (std::size_t e = std::size_t(a.warmup_steps); e < r.epochs.size(); ++e)
    timed.push_back(r.epochs[e].seconds);
  const double med = median(timed), best = *std::min_element(timed.begin(), timed.end());
  const std::int64_t fpt = flops_per_token(lm.model, a.layers, a.seq_len, a.d);
  const double tok = double(a.batch * a.seq_len);
  const std::size_t params = lm.model.parameter_count();
  Json j = {{"mode", "scale"},
            {"seed", seed},
            {"threads", threads},
            {"vocab", a.vocab},
            {"d", a.d},
            {"hidden", a.hidden},
            {"layers", a.layers},
            {"seq_len", a.seq_len},
            {"batch", a.batch},
            {"params", params},
            {"params_nonembedding", nonembedding_parameters(lm.model)},
            {"tokens_per_step", tok},
            {"steps_timed", timed.size()},
            {"sec_per_step_median", med},
            {"sec_per_step_min", best},
            {"sec_per_step_max", *std::max_element(timed.begin(), timed.end())},
            {"tokens_per_s", tok / med},
            {"train_flops_per_token", fpt},
            {"gflops_median", double(fpt) * tok / med / 1e9},
            {"gflops_best", double(fpt) * tok / best / 1e9},
            {"loss_first_step", r.epochs.front().loss},
            {"loss_last_step", r.epochs.back().loss},
            {"peak_rss_mb", double(peak_rss_bytes()) / 1e6}};
  // Under mpirun (bench/mpi.sh) every rank reports its own line: its memory, and what it
  // summed with the others and waited for (per step, warm-up steps included).
  const double all_steps = double(r.epochs.size());
  j.update(Json{{"ranks", world.size()},
                {"rank", world.rank()},
                {"allreduce_mb_per_step", world.bytes_summed() / all_steps / 1e6},
                {"allreduce_wait_s_per_step", world.seconds_waited() / all_steps}});
  j.update(memory_need(params, a.batch, a.seq_len, a.d, a.hidden, a.layers, a.vocab, 1));
  j["rss_over_need"] = j["peak_rss_mb"].get<double>() / j["need_total_mb"].get<double>();
  return j;
}

// Read bandwidth in GB/s over a buffer of `bytes`, summed repeatedly for >= min_time s
// (best of 5): the rate at which one core streams a working set of that size from
// wherever it lives (cache for a small model's weights, DRAM for a large buffer).
double read_bandwidth(std::size_t bytes, double min_time) {
  // 64 lanes: at least four independent vector adds per step, so the loop waits on
  // loads, not on the latency of one chain of adds.
  constexpr std::size_t kLanes = 64;
  std::vector<float> buffer(std::max<std::size_t>(kLanes, bytes / sizeof(float) / kLanes * kLanes),
                            1.0f);
  float lane[kLanes] = {};
  auto pass = [&] {
    const float* x = buffer.data();
    for (std::size_t i = 0; i < buffer.size(); i += kLanes)
      for (std::size_t j = 0; j < kLanes; ++j) lane[j] += x[i + j];
  };
  pass();
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::size_t passes = 0;
    const auto t0 = Clock::now();
    while (passes < 2 || seconds_since(t0) < min_time / 5) pass(), ++passes;
    best = std::max(best, double(passes * buffer.size() * sizeof(float)) / seconds_since(t0) / 1e9);
  }
  float sum = 0;
  for (float v : lane) sum += v;
  if (!(sum > 0)) throw strata::Error("bandwidth: bad sum");  // keeps the loop alive
  return best;
}

// The memory-bandwidth floor of one decoding step: every weight outside the embedding
// tables (of which a step reads one row each) read once, at the read bandwidth of a
// working set that size. The KV cache read per step (2 L d floats per position) is left
// out: at most a few percent at RustGPT's sizes.
Json generation_floor(const strata::Model<float>& model, double ms_per_token) {
  const std::size_t bytes = nonembedding_parameters(model) * sizeof(float);
  const double gbps = read_bandwidth(bytes, 0.5);
  const double dram_gbps = read_bandwidth(std::size_t(256) << 20, 1.0);
  const double floor_ms = double(bytes) / (gbps * 1e9) * 1e3;
  return {{"weight_bytes", bytes},
          {"read_gbps_weights_size", gbps},
          {"read_gbps_256mb", dram_gbps},
          {"floor_ms_per_token", floor_ms},
          {"floor_dram_ms_per_token", double(bytes) / (dram_gbps * 1e9) * 1e3},
          {"over_floor", ms_per_token / floor_ms}};
}

// generate: greedy, batch 1, `gen_tokens` new tokens (never stopping at </s>), untrained
// RustGPT model; the median over reps after one warm-up, with and without the KV cache.
Json run_generate(const Args& a, int threads) {
  const strata::ThreadingScope threading(threads);  // as strata generate runs
  LanguageModel lm = rustgpt_model(a);
  std::vector<std::string> unknown;
  const std::vector<std::int32_t> prompt = lm.encode(a.prompt, &unknown);
  const std::size_t max_len = std::size_t(lm.model.max_seq_len);
  if (prompt.size() >= max_len) throw strata::Error("the prompt is longer than max_seq_len");
  const std::size_t n = std::min(a.gen_tokens, max_len - prompt.size());
  Json j = {{"mode", "generate"},       {"seed", lm.config.seed},
            {"threads", threads},       {"vocab", lm.tokenizer->size()},
            {"prompt", a.prompt},       {"prompt_tokens", prompt.size()},
            {"unknown_words", unknown}, {"new_tokens", n},
            {"reps", a.gen_reps}};
  for (const bool cache : {true, false}) {
    strata::SamplingOptions options;
    options.max_tokens = n;
    options.use_cache = cache;
    strata::Rng rng(lm.config.seed);
    strata::generate(lm.model, prompt, -1, options, rng);  // warm-up
    std::vector<double> times;
    for (std::size_t r = 0; r < a.gen_reps; ++r) {
      const auto t0 = Clock::now();
      const auto out = strata::generate(lm.model, prompt, -1, options, rng);
      times.push_back(seconds_since(t0));
      if (out.size() != n) throw strata::Error("generate returned a short answer");
    }
    const std::string key = cache ? "" : "nocache_";
    j[key + "sec_median"] = median(times);
    j[key + "sec_min"] = *std::min_element(times.begin(), times.end());
    j[key + "ms_per_token"] = 1e3 * median(times) / double(n);
    j[key + "tokens_per_s"] = double(n) / median(times);
  }
  j["peak_rss_mb"] = double(peak_rss_bytes()) / 1e6;  // before the bandwidth buffers
  if (a.gen_floor) j.update(generation_floor(lm.model, j["ms_per_token"].get<double>()));
  return j;
}

// gemm: C = A B (row-major, no transposes) through strata::gemm, each shape warmed up,
// calibrated to >= min_time per repetition, `reps` repetitions; median and best GFLOP/s.
std::vector<Json> run_gemm(const Args& a, int threads) {
  apply_threads(threads);
  std::vector<Json> out;
  std::stringstream list(a.shapes);
  for (std::string shape; std::getline(list, shape, ',');) {
    std::size_t m = 0, n = 0, k = 0;
    if (std::sscanf(shape.c_str(), "%zux%zux%zu", &m, &n, &k) != 3 || !m || !n || !k)
      throw strata::Error("--shapes: bad shape \"" + shape + "\" (want MxNxK)");
    std::vector<float> A(m * k), B(k * n), C(m * n);
    std::mt19937 gen(std::uint32_t(a.seed.value_or(1)));
    std::normal_distribution<float> normal;
    for (float& x : A) x = normal(gen);
    for (float& x : B) x = normal(gen);
    const Sgemm sgemm = cblas_sgemm();
    auto call = [&] {
      sgemm(kRowMajor, kNoTrans, kNoTrans, int(m), int(n), int(k), 1.0f, A.data(), int(k), B.data(),
            int(n), 0.0f, C.data(), int(n));
    };
    // correctness of one entry against a double dot product: a broken BLAS set-up
    // (wrong library, wrong strides) shows here rather than as a suspicious ceiling
    call();
    double ref = 0;
    for (std::size_t i = 0; i < k; ++i) ref += double(A[i]) * double(B[i * n]);
    const double err = std::abs(ref - double(C[0]));
    std::size_t calls = 0;
    auto t0 = Clock::now();
    while (calls < 2 || seconds_since(t0) < 0.1) call(), ++calls;
    const double per_call = seconds_since(t0) / double(calls);
    const std::size_t iters = std::max<std::size_t>(1, std::size_t(a.min_time / per_call));
    const double flop = 2.0 * double(m) * double(n) * double(k) * double(iters);
    std::vector<double> rates;
    for (std::size_t r = 0; r < a.reps; ++r) {
      t0 = Clock::now();
      for (std::size_t i = 0; i < iters; ++i) call();
      rates.push_back(flop / seconds_since(t0) / 1e9);
    }
    out.push_back({{"mode", "gemm"},
                   {"threads", threads},
                   {"blas_threads", strata::blas_threads()},
                   {"M", m},
                   {"N", n},
                   {"K", k},
                   {"iters_per_rep", iters},
                   {"reps", a.reps},
                   {"gflops_median", median(rates)},
                   {"gflops_best", *std::max_element(rates.begin(), rates.end())},
                   {"gflops_worst", *std::min_element(rates.begin(), rates.end())},
                   {"abs_err_c00", err}});
  }
  return out;
}

void emit(const Args& a, Json j, const LoadMonitor& monitor, const std::string& load_before) {
  j.update(monitor.finish());
  j["loadavg_before"] = load_before;
  j["loadavg_after"] = loadavg();
  j["tool"] = "strata_bench";
  j["blas_core"] = strata::blas_core();
  j["isa"] = build_isa();
  j["cpu_model"] = cpu_model();
  for (const char* v : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"}) {
    const char* value = std::getenv(v);
    j["env"][v] = value ? Json(value) : Json(nullptr);
  }
  const std::string line = j.dump();
  std::cout << line << "\n" << std::flush;
  if (!a.json.empty()) {
    std::ofstream out(a.json, std::ios::app);
    out << line << "\n";
    if (!out) throw strata::Error(a.json + ": cannot append");
  }
  if (a.verbose) {
    std::cerr << "[" << j["mode"].get<std::string>() << " threads=" << j["threads"] << "] ";
    const std::string m = j["mode"];
    if (m == "single" || m == "batched")
      std::cerr << "sec/epoch " << j["sec_per_epoch_median"] << "  train tokens/s "
                << j["tokens_per_s"] << "  loss " << j["loss_first_epoch"] << " -> "
                << j["loss_last_epoch"];
    else if (m == "scale")
      std::cerr << "sec/step " << j["sec_per_step_median"] << "  model GFLOP/s "
                << j["gflops_median"] << "  peak RSS " << j["peak_rss_mb"] << " MB (need "
                << j["need_total_mb"] << " MB)";
    else if (m == "generate")
      std::cerr << "ms/token " << j["ms_per_token"] << " (KV cache), " << j["nocache_ms_per_token"]
                << " (no cache), floor " << j.value("floor_ms_per_token", Json()) << " ("
                << j.value("weight_bytes", Json()) << " B of weights at "
                << j.value("read_gbps_weights_size", Json()) << " GB/s)";
    else if (m == "gemm")
      std::cerr << j["M"] << "x" << j["N"] << "x" << j["K"] << " GFLOP/s " << j["gflops_median"];
    std::cerr << "  [" << j["isa"].get<std::string>() << ", OpenBLAS "
              << j["blas_core"].get<std::string>() << "; other cores during "
              << j["other_cores_during"] << ", loadavg " << load_before << "]\n";
  }
}

// Every mode at a tiny size; throws if a number is not sane. The CTest's body.
void run_smoke(Args a) {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw strata::Error("smoke: " + what);
  };
  auto finite_positive = [](const Json& j, const char* key) {
    const double v = j.at(key).get<double>();
    return std::isfinite(v) && v > 0;
  };
  a.json.clear();
  {
    a.shapes = "64x48x32";
    a.min_time = 0.005;
    a.reps = 2;
    for (const Json& j : run_gemm(a, 1)) {
      check(finite_positive(j, "gflops_median"), "gemm GFLOP/s");
      check(j["abs_err_c00"].get<double>() < 1e-3, "gemm result");
      std::cout << j.dump() << "\n";
    }
  }
  {
    a.batch = 16;
    a.epochs = 1;
    a.warmup_epochs = 1;
    const Json j = run_epochs(a, 1, false);
    check(finite_positive(j, "tokens_per_s") && finite_positive(j, "loss_last_epoch"), "batched");
    check(j["epochs_trained"] == 2 && j["tokens_per_epoch"].get<std::size_t>() > 0,
          "batched epochs");
    std::cout << j.dump() << "\n";
  }
  {
    a.gen_tokens = 4;
    a.gen_reps = 1;
    a.gen_floor = false;
    const Json j = run_generate(a, 1);
    check(finite_positive(j, "ms_per_token") && finite_positive(j, "nocache_ms_per_token"),
          "generate");
    check(j["new_tokens"] == 4, "generate token count");
    std::cout << j.dump() << "\n";
  }
  {
    a.d = 16, a.hidden = 32, a.layers = 2, a.seq_len = 8, a.batch = 3, a.vocab = 40;
    a.steps = 2, a.warmup_steps = 1;
    const Json j = run_scale(a, 1);
    check(finite_positive(j, "gflops_median") && j["steps_timed"] == 2, "scale");
    check(finite_positive(j, "need_total_mb") && finite_positive(j, "peak_rss_mb"), "scale memory");
    // P = V d + T d (embedding) + L (3 d^2 + 2 d H + H + d + 4 d) + d V + V
    const std::size_t P =
        40 * 16 + 8 * 16 + 2 * (3 * 16 * 16 + 2 * 16 * 32 + 32 + 16 + 4 * 16) + 16 * 40 + 40;
    check(j["params"] == P,
          "scale parameter count " + j["params"].dump() + ", expected " + std::to_string(P));
    check(j["params_nonembedding"] == P - 40 * 16 - 8 * 16, "scale non-embedding parameters");
    std::cout << j.dump() << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Strata's side of the benchmark (bench/README.md); JSON lines on stdout"};
  app.add_option("--mode", a.mode, "single | batched | scale | generate | gemm | smoke | info")
      ->check(CLI::IsMember({"single", "batched", "scale", "generate", "gemm", "smoke", "info"}));
  app.add_option("--threads", a.threads, "comma list; one run per entry");
  app.add_option("--config", a.config, "the RustGPT run config (single/batched/generate)");
  app.add_option("--pretrain", a.pretrain, "RustGPT's pretraining_data.json");
  app.add_option("--chat", a.chat, "RustGPT's chat_training_data.json");
  app.add_option("--data", a.data, "single/batched: pretrain | chat")
      ->check(CLI::IsMember({"pretrain", "chat"}));
  app.add_option("--batch", a.batch, "batched/scale batch size");
  app.add_option("--lr", a.lr, "learning rate (single/batched/scale)");
  app.add_option("--epochs", a.epochs, "timed epochs (single/batched)");
  app.add_option("--warmup-epochs", a.warmup_epochs, "untimed epochs first");
  app.add_option("--d", a.d, "scale: model width");
  app.add_option("--hidden", a.hidden, "scale: FFN hidden width");
  app.add_option("--layers", a.layers, "scale: transformer blocks");
  app.add_option("--seq-len", a.seq_len, "scale: T of every sequence");
  app.add_option("--vocab", a.vocab, "scale: vocabulary size");
  app.add_option("--steps", a.steps, "scale: timed steps");
  app.add_option("--warmup-steps", a.warmup_steps, "scale: untimed steps first");
  app.add_option("--gen-tokens", a.gen_tokens, "generate: new tokens");
  app.add_option("--gen-reps", a.gen_reps, "generate: timed repetitions");
  app.add_option("--prompt", a.prompt, "generate: the prompt");
  app.add_flag("!--no-floor", a.gen_floor, "generate: skip the memory-bandwidth floor");
  app.add_option("--shapes", a.shapes, "gemm: MxNxK list");
  app.add_option("--min-time", a.min_time, "gemm: seconds per repetition at least");
  app.add_option("--reps", a.reps, "gemm: repetitions");
  app.add_option("--seed", a.seed,
                 "seed of the weights, shuffles, random tokens and gemm's matrices (default: "
                 "the config's; scale 0, gemm 1)");
  app.add_option("--json", a.json, "also append each JSON object to this file");
  app.add_flag("-v,--verbose", a.verbose, "a readable line per run on stderr");
  CLI11_PARSE(app, argc, argv);
  try {
    if (a.epochs < 1 || a.warmup_epochs < 0 || a.steps < 1 || a.warmup_steps < 0 ||
        a.gen_reps < 1 || a.reps < 1 || a.batch < 1)
      throw strata::Error("epochs, steps, reps and batch must be >= 1 (warm-ups >= 0)");
    if (a.mode == "smoke") {
      run_smoke(a);
      return 0;
    }
    if (a.mode == "info") {  // what a run would be labelled with: CPU, ISA, OpenBLAS core
      emit(a, Json{{"mode", "info"}, {"threads", 1}}, LoadMonitor(), loadavg());
      return 0;
    }
    for (const int n : parse_threads(a.threads)) {
      const std::string load_before = loadavg();
      LoadMonitor monitor;  // for gemm: over all its shapes
      if (a.mode == "gemm") {
        for (const Json& j : run_gemm(a, n)) emit(a, j, monitor, load_before);
        continue;
      }
      Json j;
      if (a.mode == "single" || a.mode == "batched")
        j = run_epochs(a, n, a.mode == "single");
      else if (a.mode == "scale")
        j = run_scale(a, n);
      else
        j = run_generate(a, n);
      emit(a, j, monitor, load_before);
    }
  } catch (const std::exception& e) {
    std::cerr << "strata_bench: " << e.what() << "\n";
    return 1;
  }
  strata::Distributed::finalize();
  return 0;
}
