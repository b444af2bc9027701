# Helpers for the MPI end-to-end tests (sourced, not run).
#
#   source mpi_lib.sh STRATA_BINARY MPIRUN [MPIRUN ARGS...]
#
# Sets MPIRUN (an array: the launcher and its arguments, without -np), SRC (the source
# tree) and copies data/pretraining.json into the work directory (lib.sh).
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$SRC/tests/cli/lib.sh" "$1"
shift
MPIRUN=("$@")
mkdir -p data && cp "$SRC/data/pretraining.json" data/

# Columns 4 and 6 (the loss, the targets) of every metrics row, one per line.
losses() { awk -F, 'NR > 1 { print $4, $6 }' "$1/metrics.csv"; }

# The largest |difference| between two runs' step losses, and whether every step is
# within its bound. What the split reorders: the sum of the step's n_t token losses (n_t
# from metrics.csv) and, through the gradients, the sums over those positions in every
# parameter's gradient; the forward of a row may be blocked differently by BLAS for 20
# rows than for 40, which reorders the reductions along its path (tests/float_bounds.hpp:
# transformer_path_length(2 blocks, dim 16, 1 or 2 heads, hidden <= 64, 80 positions)
# <= 752). So n = n_t + 752 terms of magnitude the loss L, rounded in float (u = 2^-24).
# Rounding errors of independent signs grow like sqrt(n) u, not n u (float_bounds.hpp
# explains why its worst case 2 n u M is used against the row's largest value instead;
# here M is the mean itself, the errors' scale), and each step passes its difference on
# to the next steps' parameters through Adam: to first order the differences add, so
# step k may differ by k * 2 sqrt(n) u L. (Weighting each rank's loss by 1/2 instead of
# its share of the targets already exceeds this at step 2, by 4x.)
compare_losses() {
  local name=$1 a=$2 b=$3
  paste -d' ' <(losses "$a") <(losses "$b") | awk -v name="$name" '
    { k++; d = $1 - $3; if (d < 0) d = -d
      bound = k * 2 * sqrt($2 + 752) * 2^-24 * $1
      if (d / bound > worst) { worst = d / bound; at = k; diff = d; at_bound = bound }
      if (d > bound) bad++ }
    END { printf "%s: %d steps, largest |loss difference| / bound %.2g: %.3g at step %d (bound %.3g)\n",
                 name, k, worst, diff, at, at_bound
          exit !(k >= 50 && !bad) }' || fail "$name: the losses differ by more than the bound"
}


manifest_step() { grep -o '"step": [0-9]*' "$1/checkpoint/manifest.json" 2>/dev/null | grep -o '[0-9]*$'; }

# The process id of rank RANK among mpirun MPIRUN_PID's children (0 if none yet).
rank_pid() {
  local mpirun_pid=$1 rank=$2 pid
  for pid in $(pgrep -P "$mpirun_pid"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
      echo "$pid"
      return
    fi
  done
  echo 0
}

# Waits (up to 60 s) until run directory DIR holds a checkpoint past step AFTER, while
# process PID lives, looking every INTERVAL seconds (default 0.05). Returns 1 if it
# never did.
wait_for_checkpoint() {
  local dir=$1 after=$2 pid=$3 interval=${4:-0.05} step
  local tries
  tries=$(echo "60 / $interval" | bc)
  for _ in $(seq 1 "$tries"); do
    step=$(manifest_step "$dir")
    [ -n "$step" ] && [ "$step" -gt "$after" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep "$interval"
  done
  return 1
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
