// Matrix products through OpenBLAS's cblas_sgemm/cblas_dgemm, reached through
// xtensor-blas's binding (cxxblas::gemm), row-major, with transpose flags (no transposed
// copies are ever made). This header includes neither, so users of it see no BLAS
// declarations.
#pragma once

#include <cstddef>

namespace strata {

// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, all row-major.
// lda/ldb/ldc are the row strides of A, B, C as stored.
// With the thread pool (parallel.hpp) at N > 1 threads, a product of at least 2^19
// multiply-adds called outside a pool task is split into N blocks of whole rows or
// columns of C, each a single-threaded BLAS call on a pool thread. Every entry of C
// is still one k-long sum, but OpenBLAS may pick another kernel for a block than for
// the whole, so results can differ from the 1-thread ones in the last bits.
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// Convenience for contiguous operands: lda/ldb/ldc follow from the shapes.
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c) {
  gemm(transpose_a, transpose_b, m, n, k, alpha, a, transpose_a ? m : k, b, transpose_b ? k : n,
       beta, c, n);
}

void set_blas_threads(int threads);
int blas_threads();

}  // namespace strata
