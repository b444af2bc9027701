// Flushing subnormal floats to zero while training.
//
// Adam's first moment of a parameter whose gradient stays zero (an embedding row of a
// word the current phase never uses) decays by beta1 each step into the subnormal
// range and then sticks at the smallest subnormal (0.9 * 2^-149 rounds back to
// 2^-149). Every vector instruction touching such a value takes a microcode assist
// (~100x slower): in the RustGPT recipe ~9,000 of these made Adam's pass up to 10x
// slower late in the instruction phase. With FTZ (results) and DAZ (inputs) set, such
// values are 0 instead. The update they would have made (step * 1e-40 / eps-sized
// denominators) is far below half an ulp of any weight it is added to, so the trained
// weights and losses are the same (the recipe's 200 epoch losses are bit-identical).
//
// The mode is per thread: ScopedFlushDenormals sets it for the calling thread and
// restores the previous mode on destruction; the thread pool (parallel.hpp) runs its
// workers with the caller's mode.
#pragma once

#if defined(__SSE__) || defined(__x86_64__)
#include <immintrin.h>
#define STRATA_HAS_MXCSR 1
#endif

namespace strata {

// The calling thread's floating-point control word (MXCSR on x86; 0 elsewhere).
inline unsigned fp_control() {
#ifdef STRATA_HAS_MXCSR
  return _mm_getcsr();
#else
  return 0;
#endif
}

inline void set_fp_control([[maybe_unused]] unsigned control) {
#ifdef STRATA_HAS_MXCSR
  _mm_setcsr(control);
#endif
}

class ScopedFlushDenormals {
 public:
  ScopedFlushDenormals() : saved_(fp_control()) {
#ifdef STRATA_HAS_MXCSR
    set_fp_control(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#endif
  }
  ~ScopedFlushDenormals() { set_fp_control(saved_); }
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

 private:
  unsigned saved_;
};

}  // namespace strata
