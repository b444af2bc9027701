#include "framework/blas.hpp"

#include <algorithm>
#include <cctype>
#include <complex>  // cxxblas's typedefs use std::complex without including it
#include <string>

#include "framework/parallel.hpp"
// xtensor-blas's binding to cblas (FLENS's cxxblas). WITH_OPENBLAS selects its OpenBLAS
// driver: cblas with int indices (HAVE_CBLAS, as xtensor-blas sets it) and OpenBLAS's
// thread-count functions. Only gemm and the drivers it calls are included, not all of
// cxxblas.
#define WITH_OPENBLAS
#include "xflens/cxxblas/drivers/drivers.tcc"
#include "xflens/cxxblas/level2/gemv.tcc"
#include "xflens/cxxblas/level3/gemm.tcc"

extern "C" char* openblas_get_corename(void);  // OpenBLAS's cblas.h, not cxxblas's

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

// One row (or column) of C: a matrix-vector product, which reads op(B) (or op(A)) once
// in place. A gemm call would first pack the whole matrix into its blocked layout,
// which costs as much as the product itself when C has one row (a decoding step).
// beta == 0 means "C is not read", which cblas_?gemv leaves to its scal kernel: C is
// zeroed here first so that garbage in C (NaN bit patterns) cannot leak through.
template <class T>
void gemv_row(bool ta, bool tb, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
              const T* b, std::size_t ldb, T beta, T* c, std::size_t incc) {
  if (beta == T(0))
    for (std::size_t j = 0; j < n; ++j) c[j * incc] = T(0);
  // x = the row of op(A): A's row 0 (stride 1), or A's column 0 when A is transposed.
  const int incx = ta ? int(lda) : 1;
  if (tb)  // B stored (n, k): c = B x
    cxxblas::gemv(cxxblas::RowMajor, cxxblas::NoTrans, int(n), int(k), alpha, b, int(ldb), a, incx,
                  beta, c, int(incc));
  else  // B stored (k, n): c = B^T x
    cxxblas::gemv(cxxblas::RowMajor, cxxblas::Trans, int(k), int(n), alpha, b, int(ldb), a, incx,
                  beta, c, int(incc));
}

// Products with at most this many rows of C (or columns, when C has one column) go
// through gemv, one row at a time: below it, packing op(B) costs more than reading it
// once per row from cache.
constexpr std::size_t kGemvRows = 1;

// Whether one-row products take gemv. OpenBLAS's AVX-512 cores (SkylakeX, Cooperlake)
// have a small-matrix gemm path that reads op(B) in place, without packing, and is
// faster than their gemv on a decoding step's shapes; every other core packs op(B) on
// each gemm call, which gemv avoids. Decided once, from the core OpenBLAS runs.
bool one_row_products_use_gemv() {
  static const bool use = [] {
    std::string core = blas_core();
    std::transform(core.begin(), core.end(), core.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    return core != "skylakex" && core != "cooperlake" && core != "sapphirerapids";
  }();
  return use;
}

// Products of at least this many multiply-adds are cut into blocks (split_blocks);
// below it, the hand-off to the pool costs more than a second thread gains: ~15 us at
// the ~70 GFLOP/s OpenBLAS reaches on these shapes, several times the pool's hand-off.
constexpr double kSplitMacs = 1 << 19;

// How many blocks a product of `macs` multiply-adds is cut into: a function of the
// shape alone, never of the thread count, so that 1 and N threads make the same BLAS
// calls (OpenBLAS may pick another kernel, and so round differently, for a block than
// for the whole). Two blocks up to 4x the threshold, then four: even work for 1, 2 or
// 4 threads; at 1 thread they run one after the other.
std::size_t split_blocks(double macs) {
  if (macs < kSplitMacs) return 1;
  return macs < 4 * kSplitMacs ? 2 : 4;
}

template <class T>
void gemm_impl(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
               std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  // (k == 0 stays with gemm, which still scales C by beta; gemv would return at once.)
  const bool gemv = one_row_products_use_gemv();
  if (gemv && m <= kGemvRows && k > 0) {
    for (std::size_t i = 0; i < m; ++i)
      gemv_row(ta, tb, n, k, alpha, ta ? a + i : a + i * lda, lda, b, ldb, beta, c + i * ldc,
               std::size_t(1));
    return;
  }
  if (gemv && n == 1 &&
      k > 0) {  // C^T = op(B)^T op(A)^T: one row, with the operands' roles swapped
    gemv_row(!tb, !ta, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
    return;
  }
  // Cut the same way everywhere, inside a pool task too (there the blocks run one after
  // the other on the task's thread): whether a product runs next to other work (the
  // optimizer update beside a forward pass at N threads) must not change its bits.
  const std::size_t parts = split_blocks(double(m) * double(n) * double(k));
  if (parts < 2) {
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
  ThreadPool::global().run(blocks, [&](std::size_t i) {
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
std::string blas_core() { return openblas_get_corename(); }

}  // namespace strata
