#include "framework/blas.hpp"

#include <algorithm>
#include <complex>  // cxxblas's typedefs use std::complex without including it

#include "framework/parallel.hpp"
// xtensor-blas's binding to cblas (FLENS's cxxblas). WITH_OPENBLAS selects its OpenBLAS
// driver: cblas with int indices (HAVE_CBLAS, as xtensor-blas sets it) and OpenBLAS's
// thread-count functions. Only gemm and the drivers it calls are included, not all of
// cxxblas.
#define WITH_OPENBLAS
#include "xflens/cxxblas/drivers/drivers.tcc"
#include "xflens/cxxblas/level3/gemm.tcc"

namespace strata {

namespace {

cxxblas::Transpose flag(bool transpose) { return transpose ? cxxblas::Trans : cxxblas::NoTrans; }

// cxxblas::gemm picks cblas_sgemm or cblas_dgemm from T.
template <class T>
void blas(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  cxxblas::gemm(cxxblas::RowMajor, flag(ta), flag(tb), int(m), int(n), int(k), alpha, a, int(lda),
                b, int(ldb), beta, c, int(ldc));
}

// Products below this many multiply-adds run whole on the calling thread: ~15 us at
// the ~70 GFLOP/s OpenBLAS reaches on these shapes, several times the pool's hand-off.
constexpr double kSplitMacs = 1 << 19;

template <class T>
void gemm_impl(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
               std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  ThreadPool& pool = ThreadPool::global();
  const std::size_t parts = std::size_t(pool.threads());
  if (parts < 2 || ThreadPool::in_parallel_task() ||
      double(m) * double(n) * double(k) < kSplitMacs) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split C into `parts` blocks of whole rows or whole columns (the longer side), with
  // bounds on multiples of 16 (a vector width); every block keeps the full k sum.
  const bool by_rows = m >= n;
  const std::size_t extent = by_rows ? m : n;
  const std::size_t block = (extent + parts - 1) / parts;
  const std::size_t step = std::min(extent, (block + 15) / 16 * 16);
  const std::size_t blocks = (extent + step - 1) / step;
  pool.run(blocks, [&](std::size_t i) {
    const std::size_t first = i * step, count = std::min(step, extent - first);
    if (by_rows)  // rows of op(A) and C
      blas(ta, tb, count, n, k, alpha, ta ? a + first : a + first * lda, lda, b, ldb, beta,
           c + first * ldc, ldc);
    else  // columns of op(B) and C
      blas(ta, tb, m, count, k, alpha, a, lda, tb ? b + first * ldb : b + first, ldb, beta,
           c + first, ldc);
  });
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta,
                 float* c, std::size_t ldc) {
  gemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
                  const double* a, std::size_t lda, const double* b, std::size_t ldb, double beta,
                  double* c, std::size_t ldc) {
  gemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }
int blas_threads() { return openblas_get_num_threads(); }

}  // namespace strata
