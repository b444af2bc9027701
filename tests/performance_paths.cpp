// The fast paths against their plain counterparts: every place where an optimisation
// could make results diverge from the straightforward implementation (vectorised
// reductions, fused loops, threads) is checked here against a reference computed the
// plain way. No timings: these tests only check results.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define STRATA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRATA_TEST_ASAN 1
#endif
#endif
#ifndef STRATA_TEST_ASAN
#define STRATA_TEST_ASAN 0
#endif
#if STRATA_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

#include "float_bounds.hpp"
#include "framework/blas.hpp"
#include "framework/clip.hpp"
#include "framework/config.hpp"
#include "framework/denormals.hpp"
#include "framework/loss.hpp"
#include "framework/npz.hpp"
#include "framework/parallel.hpp"
#include "framework/rng.hpp"
#include "framework/simd_math.hpp"
#include "layers/gelu.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/sgd.hpp"
#include "tasks/language_model.hpp"
#include "test_support.hpp"
#include "training/trainer.hpp"

using namespace strata;

// STRATA_TEST_RELEASE_BYTES=0 makes every layer free each buffer it is told is dead,
// however small (CTest "release_every_buffer" runs the gradient, layer, transformer and
// training suites so): their checks then prove that no layer reads a buffer after
// release, at the tests' small sizes, where the default threshold releases nothing.
struct ReleaseThresholdFromEnvironment {
  std::optional<ScopedReleaseThreshold> scope;
  ReleaseThresholdFromEnvironment() {
    if (const char* bytes = std::getenv("STRATA_TEST_RELEASE_BYTES"))
      scope.emplace(std::size_t(std::strtoull(bytes, nullptr, 10)));
  }
};
BOOST_TEST_GLOBAL_FIXTURE(ReleaseThresholdFromEnvironment);

namespace {

std::vector<float> random_floats(std::size_t n, double std, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> out(n);
  for (float& v : out) v = float(rng.normal(0.0, std));
  return out;
}

// Bytes the program has allocated and not freed: glibc's count, or AddressSanitizer's
// when it replaces malloc (the sanitizer build).
std::size_t heap_bytes_in_use() {
#if STRATA_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

// Parameters of sizes around and above the optimizers' 16K-element chunks.
struct ParameterSet {
  std::vector<std::unique_ptr<Parameter<float>>> owned;
  std::vector<Parameter<float>*> list;
  explicit ParameterSet(std::uint64_t seed) {
    const std::size_t sizes[] = {3, 16384, 40000, 1000};
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      auto values = random_floats(sizes[i], 0.5, seed + i);
      Tensor<float> t = Tensor<float>::from_shape({sizes[i]});
      std::copy(values.begin(), values.end(), t.begin());
      const std::string name(1, char('a' + i));  // ("p" + to_string(i) trips GCC 12's
                                                 // -Warray-bounds false positive at -O3)
      owned.push_back(std::make_unique<Parameter<float>>(name, t));
      list.push_back(owned.back().get());
    }
  }
  void set_grads(std::uint64_t seed) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto g = random_floats(list[i]->grad.size(), 0.1, seed * 100 + i);
      std::copy(g.begin(), g.end(), list[i]->grad.begin());
    }
  }
};

// Steps `fused` with step_scaled_and_zero and `plain` with: scale the grads in their
// own pass, step(), zero the grads; with clipping (scale != 1) on some steps. The
// parameters must stay bit-identical and the fused path must leave zero gradients.
void expect_fused_equals_plain(Optimizer<float>& fused, Optimizer<float>& plain, int threads) {
  ParameterSet a(11), b(11);
  for (int step = 0; step < 5; ++step) {
    a.set_grads(step);
    b.set_grads(step);
    const float scale = step % 2 ? 0.37f : 1.0f;
    {
      const ThreadingScope pool(threads);
      fused.step_scaled_and_zero(a.list, 0.01, scale);
    }
    for (Parameter<float>* p : b.list)
      for (float& g : p->grad) g *= scale;
    plain.step(b.list, 0.01);
    for (Parameter<float>* p : b.list) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  }
  std::size_t differ = 0, nonzero_grads = 0;
  for (std::size_t i = 0; i < a.list.size(); ++i) {
    for (std::size_t j = 0; j < a.list[i]->value.size(); ++j)
      differ += a.list[i]->value(j) != b.list[i]->value(j);
    for (float g : a.list[i]->grad) nonzero_grads += g != 0.0f;
  }
  BOOST_TEST_MESSAGE(fused.type() << " fused vs plain, " << threads << " thread(s): " << differ
                                  << " values differ");
  BOOST_TEST(differ == 0u);
  BOOST_TEST(nonzero_grads == 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(performance_paths)

// Slicing-by-8 CRC-32 against the bit-at-a-time definition, for lengths around the
// 8-byte step, with a running CRC carried between calls.
BOOST_AUTO_TEST_CASE(crc32_slicing_matches_bitwise_definition) {
  auto bitwise = [](const unsigned char* p, std::size_t n, std::uint32_t crc) {
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) {
      crc ^= p[i];
      for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
  };
  Rng rng(9);
  std::vector<unsigned char> bytes(5000);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng.uniform() * 256);
  for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 1000, 4999}) {
    BOOST_TEST(crc32(bytes.data(), n) == bitwise(bytes.data(), n, 0), "length " << n);
    const std::uint32_t first = crc32(bytes.data(), n / 3);
    BOOST_TEST(crc32(bytes.data() + n / 3, n - n / 3, first) == bitwise(bytes.data(), n, 0));
  }
}

BOOST_AUTO_TEST_CASE(thread_pool_runs_every_task_once) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (std::size_t tasks : {1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(tasks);
      for (int round = 0; round < 50; ++round) pool.run(tasks, [&](std::size_t i) { ++hits[i]; });
      std::size_t wrong = 0;
      for (auto& h : hits) wrong += h.load() != 50;
      BOOST_TEST(wrong == 0u, threads << " threads, " << tasks << " tasks");
    }
    // Nested use runs inline; an exception in a task reaches the caller after the job.
    std::atomic<int> inner{0}, marked{0};
    pool.run(4, [&](std::size_t) {
      marked += ThreadPool::in_parallel_task();
      pool.run(3, [&](std::size_t) { ++inner; });
    });
    BOOST_TEST(inner.load() == 12);
    BOOST_TEST(marked.load() == 4);
    BOOST_CHECK_THROW(pool.run(8,
                               [](std::size_t i) {
                                 if (i == 5) throw std::runtime_error("task 5");
                               }),
                      std::runtime_error);
    BOOST_TEST(!ThreadPool::in_parallel_task());
  }
}

// Products big enough to be split over the pool (>= 2^19 multiply-adds), every
// transpose combination, split by rows (m >= n) and by columns, with padded leading
// dimensions and beta = 1: the 2-thread result against a plain triple loop, and the
// 1-thread result bit for bit (the blocks depend on the shape alone, not the threads).
BOOST_AUTO_TEST_CASE(split_gemm_matches_single_call) {
  struct Case {
    std::size_t m, n, k;
  };
  for (const Case& shape : {Case{300, 70, 40}, Case{24, 533, 128}, Case{128, 256, 21}}) {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const std::size_t m = shape.m, n = shape.n, k = shape.k, pad = 3;
        const std::size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        const std::vector<float> a = random_floats((ta ? k : m) * lda, 1.0, 1);
        const std::vector<float> b = random_floats((tb ? n : k) * ldb, 1.0, 2);
        const std::vector<float> c0 = random_floats(m * ldc, 1.0, 3);
        std::vector<float> c[2] = {c0, c0};
        for (int threads : {1, 2}) {
          const ThreadingScope pool(threads);
          gemm<float>(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 1.0f,
                      c[threads - 1].data(), ldc);
        }
        double worst_ref = 0, worst_threads = 0;
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < n; ++j) {
            double sum = 0, size = 0;
            for (std::size_t p = 0; p < k; ++p) {
              const double term = double(ta ? a[p * lda + i] : a[i * lda + p]) *
                                  double(tb ? b[j * ldb + p] : b[p * ldb + j]);
              sum += term;
              size += std::abs(term);
            }
            const double want = 0.5 * sum + c0[i * ldc + j];
            worst_ref = std::max(worst_ref, std::abs(c[1][i * ldc + j] - want) / (0.5 * size + 1));
            worst_threads =
                std::max(worst_threads, double(std::abs(c[1][i * ldc + j] - c[0][i * ldc + j])) /
                                            (0.5 * size + 1));
          }
        std::size_t padding_touched = 0;  // columns n..ldc of C must be left alone
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = n; j < ldc; ++j)
            padding_touched += c[1][i * ldc + j] != c0[i * ldc + j];
        BOOST_TEST_MESSAGE("gemm " << m << "x" << n << "x" << k << " ta=" << ta << " tb=" << tb
                                   << ": 2 threads vs reference " << worst_ref << ", vs 1 thread "
                                   << worst_threads);
        // A k-term dot product in float is within k u of the sum of |terms| (Higham 3.1,
        // u = 2^-24, any order: any kernel, any split), alpha and + C add two more u;
        const double u = std::numeric_limits<float>::epsilon() / 2;
        BOOST_TEST(worst_ref <= double(k + 2) * u);
        BOOST_TEST(worst_threads == 0.0);
        BOOST_TEST(padding_touched == 0u);
      }
  }
}

// One-row products (a decoding step: C has one row, or one column) take gemv instead of
// a gemm that packs the whole matrix: every transpose combination, padded leading
// dimensions, beta = 0 over NaN garbage (must not leak) and beta = 1. Checked against
// a double reference and against the plain gemm path (the same row computed as part of
// a two-row product, which gemm packs), each within the reordering bound of a k-term
// dot product relative to its sum of |terms| (tests/float_bounds.hpp).
BOOST_AUTO_TEST_CASE(one_row_products_match_plain_gemm) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const std::size_t k : {1, 7, 128, 533})
    for (const std::size_t n : {1, 3, 128, 533})
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (const float beta : {0.0f, 1.0f})
            for (const bool column : {false, true}) {  // C (1, n), or C (n, 1)
              const std::size_t m = column ? n : 1, cols = column ? 1 : n, pad = 2;
              // Two rows (or columns) of the operand that varies, for the plain path.
              const std::size_t m2 = column ? m : 2, n2 = column ? 2 : cols;
              const std::size_t lda2 = (ta ? m2 : k) + pad, ldb2 = (tb ? k : n2) + pad;
              const std::vector<float> a = random_floats((ta ? k : m2) * lda2, 1.0, 5);
              const std::vector<float> b = random_floats((tb ? n2 : k) * ldb2, 1.0, 6);
              std::vector<float> c0 = random_floats(m2 * (n2 + pad), 1.0, 7);
              if (beta == 0.0f) std::fill(c0.begin(), c0.end(), nan);
              // The one-row product reads the same operands through the strides of the
              // two-row one (lda2/ldb2), so both compute the same entries.
              std::vector<float> one = c0, plain = c0;
              gemm<float>(ta, tb, m, cols, k, 0.5f, a.data(), lda2, b.data(), ldb2, beta,
                          one.data(), n2 + pad);
              gemm<float>(ta, tb, m2, n2, k, 0.5f, a.data(), lda2, b.data(), ldb2, beta,
                          plain.data(), n2 + pad);
              const bool plain_is_gemm = n >= 2;  // else the two-row product is one too
              double worst_ref = 0, worst_plain = 0;
              std::size_t leaked = 0;
              for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < cols; ++j) {
                  double sum = 0, size = 0;
                  for (std::size_t p = 0; p < k; ++p) {
                    const double term = double(ta ? a[p * lda2 + i] : a[i * lda2 + p]) *
                                        double(tb ? b[j * ldb2 + p] : b[p * ldb2 + j]);
                    sum += term;
                    size += std::abs(term);
                  }
                  const std::size_t at = i * (n2 + pad) + j;
                  const double c_in = beta == 0.0f ? 0.0 : double(c0[at]);
                  const double want = 0.5 * sum + c_in, scale = 0.5 * size + std::abs(c_in);
                  leaked += !std::isfinite(one[at]);
                  // k products and sums, alpha, + beta C: k + 2 roundings (Higham 3.1).
                  const double ref_bound =
                      testing::reordering_bound<float>(k + 2, scale) / 2 + 1e-30;
                  worst_ref = std::max(worst_ref, std::abs(one[at] - want) / ref_bound);
                  worst_plain = std::max(
                      worst_plain, std::abs(double(one[at]) - double(plain[at])) /
                                       (testing::reordering_bound<float>(k + 2, scale) + 1e-30));
                }
              std::size_t outside = 0;  // C's other entries (the plain row, padding) untouched
              for (std::size_t i = 0; i < m2; ++i)
                for (std::size_t j = 0; j < n2 + pad; ++j)
                  if (i >= m || j >= cols) {
                    const std::size_t at = i * (n2 + pad) + j;
                    outside += !(one[at] == c0[at] || (std::isnan(one[at]) && std::isnan(c0[at])));
                  }
              BOOST_TEST(leaked == 0u);
              BOOST_TEST(outside == 0u);
              BOOST_TEST(worst_ref <= 1.0, "k " << k << " n " << n << " ta " << ta << " tb " << tb
                                                << " beta " << beta << " column " << column);
              if (plain_is_gemm)
                BOOST_TEST(worst_plain <= 1.0, "k " << k << " n " << n << " ta " << ta << " tb "
                                                    << tb << " beta " << beta << " column "
                                                    << column);
            }
}

// Reading a config of a few hundred bytes must not touch memory in proportion to the
// 16 MiB limit (one zero-filled buffer of the limit set the peak RSS of every command,
// `strata_bench --mode generate`'s among them: 15.4 -> 24.8 MB). Measured in a forked
// child, whose peak RSS starts at its RSS at the fork (Linux), so the rise is the call's.
BOOST_AUTO_TEST_CASE(reading_a_small_config_touches_little_memory) {
  strata::testing::TempDir dir("config");
  const std::string content = "seed: 1\nthreads: 1\n";
  const std::string path = dir.write("small.yaml", content);
  auto peak_kb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return long(u.ru_maxrss);
  };
  const pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    const long before = peak_kb();
    const std::string text = read_config_file(path);
    const long rise_kb = peak_kb() - before;
    // The call's code and small buffers fault in ~2 MB; the old buffer alone was 16 MiB.
    _exit(text != content ? 2 : rise_kb < 8192 ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0, "1: the peak RSS rose by >= 8 MiB; 2: wrong text");
}

BOOST_AUTO_TEST_CASE(grad_norm_same_bits_with_one_and_two_threads) {
  ParameterSet set(3);
  set.set_grads(5);
  long double reference = 0;
  for (const Parameter<float>* p : set.list)
    for (float g : p->grad) reference += (long double)g * g;
  double norms[2];
  for (int threads : {1, 2}) {
    const ThreadingScope pool(threads);
    norms[threads - 1] = grad_norm(set.list);
  }
  BOOST_TEST(norms[0] == norms[1]);
  // Positive terms: each chunk's lanes sum at most 16384 / 32 squares in turn, then 5
  // pairwise levels and the chunks' sums (6 chunks) in order: (512 + 5 + 6) u relative
  // on the sum of squares, half that on its root, one more u for the root itself.
  const double u = std::numeric_limits<double>::epsilon() / 2;
  BOOST_TEST(std::abs(norms[0] - std::sqrt(double(reference))) <= (523.0 / 2 + 1) * u * norms[0]);
}

BOOST_AUTO_TEST_CASE(fused_optimizer_steps_equal_scale_step_zero) {
  for (int threads : {1, 2}) {
    Adam<float> adam_fused(1e-3), adam_plain(1e-3);
    expect_fused_equals_plain(adam_fused, adam_plain, threads);
    // L2 weight decay: the fused loop's fma must round like the separate passes.
    Adam<float> l2_fused(1e-3, 0.9, 0.999, 1e-8, 0.1), l2_plain(1e-3, 0.9, 0.999, 1e-8, 0.1);
    expect_fused_equals_plain(l2_fused, l2_plain, threads);
    AdamW<float> adamw_fused(1e-3), adamw_plain(1e-3);
    expect_fused_equals_plain(adamw_fused, adamw_plain, threads);
    SGD<float> sgd_fused(0.1, 0.9), sgd_plain(0.1, 0.9);  // the default implementation
    expect_fused_equals_plain(sgd_fused, sgd_plain, threads);
  }
}

// A parameter whose gradient turns zero: Adam's m decays into subnormals (and would
// stay at 2^-149 for ever). Flushing them to zero must not change the weights.
BOOST_AUTO_TEST_CASE(flushing_subnormals_keeps_adam_weights) {
  auto run = [](bool flush, float& m_end) {
    std::unique_ptr<ScopedFlushDenormals> guard;
    if (flush) guard = std::make_unique<ScopedFlushDenormals>();
    Parameter<float> p("w", Tensor<float>{0.25f, -0.5f, 1e-3f, 0.0f});
    Adam<float> adam(5e-4);
    for (int step = 0; step < 1500; ++step) {
      for (std::size_t i = 0; i < 4; ++i) p.grad(i) = step < 20 ? 0.01f * float(i + 1) : 0.0f;
      adam.step({&p}, 5e-4);
    }
    m_end = adam.state().at("w/m")(0);
    return Tensor<float>(p.value);
  };
  float m_plain = 0, m_flushed = 0;
  const Tensor<float> plain = run(false, m_plain), flushed = run(true, m_flushed);
  BOOST_TEST_MESSAGE("m after 1480 zero gradients: " << m_plain << " plain, " << m_flushed
                                                     << " flushed");
  BOOST_TEST(std::fpclassify(m_plain) == FP_SUBNORMAL);  // the slow case is exercised
  BOOST_TEST(m_flushed == 0.0f);
  for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(plain(i) == flushed(i));
}

// The whole trainer at 1 and 2 threads: the same epoch losses and weights, bit for
// bit. The products that run side by side on two threads are independent, reductions
// split over the pool are cut at fixed bounds, and large products are cut into blocks
// by their shape alone (blas.cpp split_blocks), so both counts make the same BLAS calls.
// The wide model's feed-forward and output products pass the split threshold (2 and 4
// blocks); whether a split changes the bits depends on the OpenBLAS kernel (Haswell's
// and SkylakeX's did, Prescott's did not), hence CTest's performance_paths_haswell_blas.
BOOST_AUTO_TEST_CASE(training_same_bits_with_one_and_two_threads) {
  strata::testing::TempDir dir("threads");
  const std::string data =
      dir.write("facts.json",
                "[\"the cat sat on the mat </s>\", \"a dog ran in the park </s>\","
                " \"birds sing at dawn while rain falls from grey clouds </s>\"]");
  struct Outcome {
    std::vector<double> losses;
    std::vector<float> weights;
  };
  auto train_at = [&](int threads, int batch, int dim, int hidden) {
    const std::string yaml = "seed: 3\nthreads: " + std::to_string(threads) + "\n" +
                             "model:\n  max_seq_len: 16\n  layers:\n    - {type: Embedding, dim: " +
                             std::to_string(dim) +
                             "}\n"
                             "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: " +
                             std::to_string(dim) + ", hidden: " + std::to_string(hidden) +
                             ", heads: 2}\n"
                             "    - {type: OutputProjection}\n"
                             "optimizer: {type: Adam, lr: 0.01, clip_norm: 1.0}\n"
                             "training:\n  phases:\n    - {name: a, data: " +
                             data + ", epochs: 6, batch: " + std::to_string(batch) +
                             ", shuffle: true}\n";
    LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "t.yaml"));
    auto optimizer = make_optimizer<float>(lm.config.optimizer);
    Outcome out;
    for (const EpochRecord& e : train(lm, *optimizer, TrainOptions{}).epochs)
      out.losses.push_back(e.loss);
    for (const Parameter<float>* p : lm.model.parameters())
      out.weights.insert(out.weights.end(), p->value.begin(), p->value.end());
    return out;
  };
  for (const int dim : {16, 128})
    for (const int batch : {1, 2}) {
      const int hidden = dim == 16 ? 32 : 1024;
      const Outcome one = train_at(1, batch, dim, hidden), two = train_at(2, batch, dim, hidden);
      std::size_t losses_differ = 0, weights_differ = 0;
      for (std::size_t i = 0; i < one.losses.size(); ++i)
        losses_differ += one.losses[i] != two.losses[i];
      for (std::size_t i = 0; i < one.weights.size(); ++i)
        weights_differ += one.weights[i] != two.weights[i];
      BOOST_TEST_MESSAGE("dim " << dim << " batch " << batch << ": " << losses_differ << " of "
                                << one.losses.size() << " losses and " << weights_differ << " of "
                                << one.weights.size() << " weights differ, 1 vs 2 threads");
      BOOST_TEST(one.losses.size() == two.losses.size());
      BOOST_TEST(losses_differ == 0u);
      BOOST_TEST(weights_differ == 0u);
    }
}

// The lane-wise vectorised sum of squares against a sequential long double sum, for
// lengths around the lane count (tails) and a parameter-sized one.
BOOST_AUTO_TEST_CASE(sum_of_squares_matches_sequential_sum) {
  for (std::size_t n : {0, 1, 31, 32, 33, 95, 1000, 65537}) {
    const std::vector<float> x = random_floats(n, 0.3, 7 + n);
    long double reference = 0;
    for (float v : x) reference += (long double)v * (long double)v;
    const double fast = sum_of_squares(x.data(), n);
    const double error = n ? std::abs(double(reference) - fast) / double(reference) : fast;
    // Exact squares of positive terms: each of the 32 lanes sums n / 32 of them in turn
    // and 5 pairwise levels combine the lanes, all in double (relative, Higham 3.1).
    const double bound = double(n / 32 + 1 + 5) * std::numeric_limits<double>::epsilon() / 2;
    BOOST_TEST_MESSAGE("sum_of_squares n=" << n << " relative error " << error << " (bound "
                                           << bound << ")");
    BOOST_TEST(error <= bound);
  }
}

// Releasing dead buffers (Layer::release, framework/chain.hpp) against keeping
// every buffer: the same training run, bit for bit, for each block layout, activation
// and dropout.
BOOST_AUTO_TEST_CASE(releasing_dead_buffers_keeps_training_bit_identical) {
  strata::testing::TempDir dir("release");
  const std::string data =
      dir.write("facts.json",
                "[\"the cat sat on the mat </s>\", \"birds sing at dawn while rain falls </s>\"]");
  for (const std::string block :
       {"norm: post", "norm: pre, activation: gelu, bias: true, out_proj: true"}) {
    auto run = [&](std::size_t threshold) {
      const ScopedReleaseThreshold scope(threshold);
      const std::string yaml =
          "seed: 5\nmodel:\n  max_seq_len: 16\n  layers:\n    - {type: Embedding, dim: 16}\n"
          "    - {type: Dropout, rate: 0.1}\n"
          "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 16, hidden: 32, heads: "
          "2, " +
          block +
          "}\n    - {type: LayerNorm}\n    - {type: OutputProjection}\n"
          "optimizer: {type: Adam, lr: 0.01, clip_norm: 1.0}\n"
          "training:\n  phases:\n    - {name: a, data: " +
          data + ", epochs: 6, batch: 2}\n";
      LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "t.yaml"));
      auto optimizer = make_optimizer<float>(lm.config.optimizer);
      std::vector<double> out;
      for (const EpochRecord& e : train(lm, *optimizer, TrainOptions{}).epochs)
        out.push_back(e.loss);
      for (Parameter<float>* p : lm.model.parameters())
        out.insert(out.end(), p->value.begin(), p->value.end());
      return out;
    };
    const std::vector<double> kept = run(std::numeric_limits<std::size_t>::max());
    const std::vector<double> released = run(0);
    BOOST_TEST_CONTEXT(block) { BOOST_TEST(kept == released); }
  }
}

// One training step with every dead buffer released frees, against one that keeps
// them, at least the buffers that are dead after a step: per post-norm block the
// attention's output, dQ, dK, dV, dS and dx; ln1's dx; fc1's output and dx; the ReLU's
// dx; fc2's output and dx; the FFN's output and dx; ln2's dx; and once the logits and
// the projection's dx. Before release existed the two steps used the same heap.
// (Heap bytes in use: heap_bytes_in_use.)
BOOST_AUTO_TEST_CASE(releasing_dead_buffers_frees_them) {
  const std::size_t B = 4, T = 16, d = 32, H = 128, V = 50, L = 2;
  const std::string yaml =
      "model:\n  max_seq_len: 16\n  layers:\n    - {type: Embedding, dim: " + std::to_string(d) +
      "}\n    - {type: TransformerBlock, name: blocks, repeat: " + std::to_string(L) +
      ", dim: " + std::to_string(d) + ", hidden: " + std::to_string(H) +
      ", heads: 1, norm: post}\n    - {type: OutputProjection}\n";
  Rng rng(9);
  Model<float> model =
      build_model<float>(ConfigNode::parse(yaml, "t.yaml").get("model"), std::int64_t(V), rng);
  Tensor<float> ids = Tensor<float>::from_shape({B, T});
  std::vector<std::int32_t> targets(B * T);
  for (std::size_t i = 0; i < B * T; ++i) {
    ids.data()[i] = float(i % V);
    targets[i] = std::int32_t((i + 1) % V);
  }
  Tensor<float> dlogits;
  auto step = [&](std::size_t threshold) {
    const ScopedReleaseThreshold scope(threshold);
    softmax_cross_entropy(model.forward(ids, Mode::train), targets, dlogits);
    model.release_output();
    model.backward(dlogits);
  };

  step(std::numeric_limits<std::size_t>::max());
  const std::size_t keeping = heap_bytes_in_use();
  step(0);
  const std::size_t releasing = heap_bytes_in_use();
  const std::size_t N = B * T;
  const std::size_t dead_floats = L * (11 * N * d + 3 * N * H + B * T * T) + N * V + N * d;
  BOOST_TEST_MESSAGE("heap in use after a step: " << keeping << " bytes keeping every buffer, "
                                                  << releasing << " releasing dead ones; "
                                                  << dead_floats * sizeof(float)
                                                  << " bytes of dead buffers expected");
  // Each emptied tensor keeps a one-element allocation (a 0-d xtensor array holds one
  // value): hence 99%, about 4 KB of slack at these sizes for some 30 released buffers.
  // Signed: releasing may use more than keeping (a release that parks buffers instead of
  // freeing them), and an unsigned difference would wrap to a huge "saving".
  const double saved = double(keeping) - double(releasing);
  BOOST_TEST(saved >= 0.99 * double(dead_floats * sizeof(float)));
}

// Cross-entropy's SIMD exp and lane-wise sums against the plain formula in long double,
// for vocabularies around the SIMD widths (tails included) and RustGPT's size. Bounds in
// units of u = eps / 2 of T, whatever the SIMD width: exp is within a few u, the sum of
// V positive terms within V u whatever the lanes (Higham 3.1), the division, the
// one-hot subtraction and the 1 / tokens scale one u each, so a probability p is within
// (V + 8) u p and its gradient (p - onehot) / tokens within (V + 8) u / tokens. The loss,
// max + log(sum) - z[target], adds u of |max| and |z| to the sum's V u (absolute, after
// the log), and the mean over the rows u of the loss: (V + 8) u (1 + 2 max |z| + loss).
template <class T>
void expect_cross_entropy_matches_plain() {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  for (std::size_t vocab : {1, 7, 8, 16, 17, 33, 533}) {
    const std::size_t rows = 6;
    const std::vector<float> draws = random_floats(rows * vocab, 3.0, 40 + vocab);
    Tensor<T> logits = Tensor<T>::from_shape({2, 3, vocab});
    std::copy(draws.begin(), draws.end(), logits.begin());
    std::vector<std::int32_t> targets(rows);
    for (std::size_t r = 0; r < rows; ++r) targets[r] = std::int32_t((r * 5) % vocab);
    targets[4] = kIgnore;
    Tensor<T> dlogits;
    const LossValue loss = softmax_cross_entropy(logits, targets, dlogits);

    long double total = 0;
    double worst_grad = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* z = logits.data() + r * vocab;
      long double max = z[0], sum = 0;
      for (std::size_t v = 0; v < vocab; ++v) max = std::max<long double>(max, z[v]);
      for (std::size_t v = 0; v < vocab; ++v) sum += std::exp((long double)z[v] - max);
      if (targets[r] != kIgnore) total += max + std::log(sum) - (long double)z[targets[r]];
      for (std::size_t v = 0; v < vocab; ++v) {
        const long double p = std::exp((long double)z[v] - max) / sum;
        const long double want =
            targets[r] == kIgnore ? 0 : (p - (std::int32_t(v) == targets[r])) / 5;
        worst_grad = std::max(worst_grad, double(std::abs(dlogits.data()[r * vocab + v] - want)));
      }
    }
    const double want_loss = double(total / 5);
    double z_max = 0;
    for (const T z : logits) z_max = std::max(z_max, std::abs(double(z)));
    const double grad_bound = double(vocab + 8) * u / 5;
    const double loss_bound = double(vocab + 8) * u * (1 + 2 * z_max + want_loss);
    BOOST_TEST_CONTEXT("vocab " << vocab << ", " << sizeof(T) * 8 << "-bit") {
      BOOST_TEST_MESSAGE("cross-entropy vocab "
                         << vocab << ", " << sizeof(T) * 8 << "-bit: loss error "
                         << std::abs(loss.mean - want_loss) / loss_bound
                         << " of its bound, gradient " << worst_grad / grad_bound);
      BOOST_TEST(std::abs(loss.mean - want_loss) <= loss_bound);
      BOOST_TEST(worst_grad <= grad_bound);
    }
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_simd_exp_matches_plain_formula) {
  expect_cross_entropy_matches_plain<float>();
  expect_cross_entropy_matches_plain<double>();
}

// GELU's SIMD tanh (float) against the plain formula with std::tanh, at sizes that leave every
// tail length (the padded last batch) and over the range where tanh bends and
// saturates. Bound: u(x) rounds to within a few ulp either way and tanh' <= 1, xsimd's
// tanh is within a few ulp of std::tanh, and 0.5 x (1 + t) adds two roundings: the
// outputs differ by at most 8 eps |x| (a difference of t carries a factor 0.5 |x|).
BOOST_AUTO_TEST_CASE(gelu_simd_tanh_matches_plain_formula) {
  using T = float;
  const double eps = std::numeric_limits<T>::epsilon();
  const double sqrt_2_over_pi = std::sqrt(2.0 / 3.14159265358979323846);
  Rng rng(31);
  double worst = 0;
  for (std::size_t n = 1; n <= 70; n += (n < 40 ? 1 : 29)) {
    Tensor<T> x = Tensor<T>::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) x(i) = T(18 * rng.uniform() - 9);
    x(0) = T(0);
    GELU<T> gelu("gelu");
    const Tensor<T>& y = gelu.forward(x, Mode::train);
    for (std::size_t i = 0; i < n; ++i) {
      const T v = x(i);
      const T plain =
          T(0.5) * v * (T(1) + std::tanh(T(sqrt_2_over_pi) * (v + T(0.044715) * v * v * v)));
      const double bound = 8 * eps * std::abs(double(v));
      worst = std::max(worst, std::abs(double(y(i)) - double(plain)) / std::max(bound, 1e-300));
      BOOST_TEST(std::abs(double(y(i)) - double(plain)) <= bound, "x " << v << " size " << n);
    }
  }
  BOOST_TEST_MESSAGE("GELU float: worst difference " << worst << " of its bound");
}

// GELU split across the pool gives the same bits as one thread, forward and backward,
// on a tensor large enough to be split into blocks, with a tail.
BOOST_AUTO_TEST_CASE(gelu_same_bits_with_one_and_two_threads) {
  Rng rng(32);
  const std::size_t n = 3 * (std::size_t(1) << 16) + 5;
  Tensor<float> x = Tensor<float>::from_shape({n}), dy = Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    x(i) = float(12 * rng.uniform() - 6);
    dy(i) = float(rng.uniform() - 0.5);
  }
  std::vector<Tensor<float>> y, dx;
  for (int threads : {1, 2}) {
    ThreadingScope scope(threads);
    GELU<float> gelu("gelu");
    y.push_back(gelu.forward(x, Mode::train));
    dx.push_back(gelu.backward(dy));
  }
  BOOST_TEST(std::equal(y[0].begin(), y[0].end(), y[1].begin()));
  BOOST_TEST(std::equal(dx[0].begin(), dx[0].end(), dx[1].begin()));
}

// The SIMD softmax pieces attention uses in place (framework/simd_math.hpp) against
// std::exp and a plain sum, at every tail length. Each exp is within a few ulp of
// std::exp (bound 4 eps relative); the sums of n terms in another order differ by at
// most 2 n u of their total plus the exps' own errors.
BOOST_AUTO_TEST_CASE(simd_exp_and_max_match_plain_in_place) {
  const double eps = std::numeric_limits<float>::epsilon();
  Rng rng(33);
  for (std::size_t n = 1; n <= 70; ++n) {
    std::vector<float> z(n);
    for (float& v : z) v = float(20 * rng.uniform() - 10);
    const float max = *std::max_element(z.begin(), z.end());
    BOOST_TEST(row_max(z.data(), n) == max);
    std::vector<float> plain(n);
    double plain_sum = 0;
    for (std::size_t i = 0; i < n; ++i) plain_sum += (plain[i] = std::exp(z[i] - max));
    const float sum = exp_shifted_sum(z.data(), max, n, z.data());
    for (std::size_t i = 0; i < n; ++i)
      BOOST_TEST(std::abs(double(z[i]) - double(plain[i])) <= 4 * eps * double(plain[i]),
                 "n " << n << " i " << i);
    BOOST_TEST(std::abs(double(sum) - plain_sum) <=
               strata::testing::reordering_bound<float>(n, plain_sum) + 4 * eps * plain_sum);
  }
}

// The clipping norm summed during backward (Model::backward's completed hook): every
// parameter reported once, its gradient already final, and the same norm as a pass
// after backward (tied embedding included: its table is complete only after the
// embedding's backward, the last one).
BOOST_AUTO_TEST_CASE(norm_summed_during_backward_equals_norm_after) {
  const std::string yaml =
      "model:\n  max_seq_len: 16\n  layers:\n    - {type: Embedding, dim: 16}\n"
      "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 16, hidden: 32, heads: 2}\n"
      "    - {type: OutputProjection, tie: embedding.token}\n";
  Rng rng(21);
  Model<float> model = build_model<float>(ConfigNode::parse(yaml, "t.yaml").get("model"), 23, rng);
  Tensor<float> ids = Tensor<float>::from_shape({2, 6});
  std::vector<std::int32_t> targets(12);
  for (std::size_t i = 0; i < 12; ++i) {
    ids.data()[i] = float((i * 7) % 23);
    targets[i] = std::int32_t((i * 3 + 1) % 23);
  }
  Tensor<float> dlogits;
  softmax_cross_entropy(model.forward(ids, Mode::train), targets, dlogits);
  std::map<const Parameter<float>*, std::vector<float>> at_completion;
  double squared = 0;
  model.backward(dlogits, [&](const std::vector<Parameter<float>*>& completed) {
    for (const Parameter<float>* p : completed) {
      BOOST_TEST(at_completion.count(p) == 0u, p->name << " reported twice");
      at_completion[p].assign(p->grad.begin(), p->grad.end());
    }
    squared += squared_grad_sum(completed);
  });
  BOOST_TEST(at_completion.size() == model.parameters().size());
  for (const Parameter<float>* p : model.parameters())
    BOOST_TEST((at_completion[p] == std::vector<float>(p->grad.begin(), p->grad.end())),
               p->name << "'s gradient changed after it was reported complete");
  const double after = grad_norm(model.parameters());
  BOOST_TEST(std::abs(std::sqrt(squared) - after) <= 1e-14 * after);
}

// At 2 threads the trainer runs each step's update alongside the next forward pass,
// layer by layer (TrainOptions::overlap_update). Against updating right after backward:
// the same losses and parameters, bit for bit, for Adam (chunked tasks), AdamW and SGD
// with momentum (the Optimizer's default one-task part), with a tied table (updated
// before the first layer reads it), checkpoints in between and a stop mid-epoch.
BOOST_AUTO_TEST_CASE(update_alongside_forward_matches_update_after_backward) {
  strata::testing::TempDir dir("alongside");
  const std::string data =
      dir.write("facts.json",
                "[\"the cat sat on the mat </s>\", \"birds sing at dawn while rain falls </s>\","
                " \"a dog ran in the park </s>\"]");
  for (const std::string optimizer :
       {"{type: Adam, lr: 0.01, clip_norm: 0.5}", "{type: AdamW, lr: 0.01, weight_decay: 0.1}",
        "{type: SGD, lr: 0.05, momentum: 0.9, clip_norm: 1.0}"}) {
    auto run = [&](bool overlap, std::int64_t stop_after, const std::string& out) {
      const std::string yaml =
          "seed: 7\nthreads: 2\nmodel:\n  max_seq_len: 16\n  layers:\n"
          "    - {type: Embedding, dim: 16}\n"
          "    - {type: TransformerBlock, name: blocks, repeat: 2, dim: 16, hidden: 32, heads: 2}\n"
          "    - {type: OutputProjection, tie: embedding.token}\n"
          "optimizer: " +
          optimizer +
          "\ntraining:\n  checkpoint_every: 5\n  phases:\n    - {name: a, data: " + data +
          ", epochs: 6, batch: 1}\n";
      LanguageModel lm = LanguageModel::create(parse_run_config(yaml, "t.yaml"));
      auto opt = make_optimizer<float>(lm.config.optimizer);
      TrainOptions options;
      options.overlap_update = overlap;
      options.stop_after_steps = stop_after;
      options.out_dir = out;
      std::vector<double> values;
      for (const EpochRecord& e : train(lm, *opt, options).epochs) values.push_back(e.loss);
      for (Parameter<float>* p : lm.model.parameters())
        values.insert(values.end(), p->value.begin(), p->value.end());
      values.push_back(double(opt->steps()));
      return values;
    };
    auto file_bytes = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    BOOST_TEST_CONTEXT(optimizer) {
      BOOST_TEST(run(true, -1, dir.file("o1")) == run(false, -1, dir.file("p1")));
      // Stopped at step 7: the checkpoint of step 5 holds the finished update.
      BOOST_TEST(run(true, 7, dir.file("o2")) == run(false, 7, dir.file("p2")));
      for (const std::string file : {"model.npz", "optimizer.npz"})
        BOOST_TEST(file_bytes(dir.file("o2/checkpoint/" + file)) ==
                       file_bytes(dir.file("p2/checkpoint/" + file)),
                   file << " differs");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
