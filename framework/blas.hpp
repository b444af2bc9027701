// Matrix products through OpenBLAS's cblas_sgemm/cblas_dgemm, reached through
// xtensor-blas's binding (cxxblas::gemm), row-major, with transpose flags (no transposed
// copies are ever made). This header includes neither, so users of it see no BLAS
// declarations.
#pragma once

#include <cstddef>
#include <string>

namespace strata {

// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, all row-major.
// lda/ldb/ldc are the row strides of A, B, C as stored.
// A product with one row of C (or one column) goes through cblas_?gemv, which reads the
// matrix in place: gemm would pack all of op(B) first, per call (a decoding step's
// products are all of this kind) — except on OpenBLAS's AVX-512 cores, whose
// small-matrix gemm path reads it in place too, faster than their gemv. A product of at least 2^19
// multiply-adds is cut into 2 or 4 blocks of whole rows or columns of C, each a single-threaded
// BLAS call, run on the thread pool (parallel.hpp) when it has more than one thread and the call is
// not already inside a pool task, else one after the other. The cut depends on the shape alone, so
// the BLAS calls, and the bits of C, are the same at any thread count.
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
// The kernels OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", ...): chosen once when it
// loads, from OPENBLAS_CORETYPE or the CPU model.
std::string blas_core();

}  // namespace strata
