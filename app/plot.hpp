// `strata plot DIR [--out FILE.png]`: training and validation loss against the
// optimizer step, drawn by gnuplot into a PNG (DIR/loss.png by default).
//
// Inputs, columns found by their header names:
//   DIR/steps.csv       step, loss: one row per optimizer step (the training curve);
//                       without it DIR/metrics.csv (one row per epoch, its step and
//                       loss) stands in
//   DIR/validation.csv  step, loss: one row per evaluation (optional: the second curve)
// Rows whose loss is not finite (a diverged step) are left out, and said so.
//
// gnuplot runs without a shell (posix_spawnp, found on PATH), reads its script on
// standard input and writes the PNG to its standard output; no path is ever part of
// the script (the title is quoted for gnuplot). It is killed after `timeout_seconds`.
// The PNG is written to a temporary file beside FILE and renamed over it, so a failure
// leaves FILE as it was.
#pragma once

#include <string>

namespace strata {

struct PlotArgs {
  std::string dir;
  std::string out;              // empty: DIR/loss.png
  double timeout_seconds = 60;  // gnuplot's time limit
};

int command_plot(const PlotArgs& args);

}  // namespace strata
