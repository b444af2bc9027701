#!/usr/bin/python3
"""Markdown tables from bench/run.sh results: medians, ratios, issue 5's targets.

  /usr/bin/python3 bench/summarize.py RESULTS_DIR [RESULTS_DIR ...]

Every figure is the median over the repetitions (each repetition's value is itself
what the tool reports: a median over epochs / steps / generation runs, or one wall
time); [a..b] is the range over repetitions. Ratios are ratios of those medians.
"x faster" = PyTorch's time / Strata's time (or Strata's rate / PyTorch's rate), so
above 1 means Strata is faster.

Where each number comes from (bench/README.md has more):
  recipe    Strata: wall time of the whole `strata train configs/rustgpt.yaml` process
            (vocabulary, both phases, checkpoint, the closing answers); PyTorch: its
            training loop alone (torch_reference.py's wall_s_total, no interpreter start,
            no vocabulary), which favours PyTorch; floor: recipe_floor's printed floor
            (matrix products + Adam)
  batched   training tokens/s = sum(len - 1) / median s per epoch (after 1 warm-up epoch)
  scale     model GFLOP/s = (6 P_nonemb + 12 L T d) * B T / median s per step; the
            SGEMM ceiling is strata_bench --mode gemm at 2048^3, same run, same threads:
            the best repetition's median (a ceiling; load only lowers it), so the
            percentages are conservative when the host is loaded
  generate  ms per new token, 40 tokens greedy; Strata with its KV cache (and without),
            PyTorch without (it has none)
  memory    peak resident set of the process (wait4 ru_maxrss); "need" = parameters +
            grads + 2 Adam moments + the activations backward reads (strata_bench prints
            the formula's terms)
"""
import argparse
import glob
import json
import os
import statistics
from collections import defaultdict


def load(dirs):
    rows, settings = [], []
    for d in dirs:
        for f in sorted(glob.glob(os.path.join(d, "results.jsonl"))):
            with open(f) as fh:
                for ln in fh:
                    if not ln.strip():
                        continue
                    r = json.loads(ln)
                    (settings if r.get("kind") == "settings" else rows).append(r)
    return rows, settings


class Table:
    """Values per (workload, side, threads, metric), over repetitions."""

    def __init__(self, rows):
        self.v = defaultdict(list)
        self.load = defaultdict(list)
        for r in rows:
            if r.get("exit_code", 0) != 0:
                continue
            w, s, t, tool = r["workload"], r["side"], r["threads"], r.get("tool") or {}
            self.load[(w, s)].append(r["other_cores_during"])

            def put(metric, value):
                if value is not None:
                    self.v[(w, s, t, metric)].append(float(value))

            put("rss", r["maxrss_mb"])
            put("wall", r["wall_s"])
            put("cpu", r["user_s"] + r["sys_s"])
            if w == "gemm":
                put("gflops", tool.get("gflops_median"))
            elif w == "recipe":
                if s == "strata":
                    put("time", r["wall_s"])
                    put("loss_pretrain", tool.get("loss_last_pretrain"))
                    put("loss_instruct", tool.get("loss_last_instruct"))
                    put("vocab", tool.get("vocab"))
                elif s == "torch":
                    put("time", tool.get("wall_s_total"))
                    ph = tool.get("phases") or []
                    if len(ph) == 2:
                        put("loss_pretrain", ph[0]["loss_last_epoch"])
                        put("loss_instruct", ph[1]["loss_last_epoch"])
                    put("vocab", tool.get("vocab"))
                elif s == "floor":
                    put("time", tool.get("floor_s"))
                    put("floor_matmul", tool.get("matmul_s"))
                    put("floor_adam", tool.get("adam_s"))
            elif w == "batched":
                put("tok_s", tool.get("tokens_per_s"))
                put("tokens_per_epoch", tool.get("tokens_per_epoch"))
                put("loss_last", tool.get("loss_last_epoch"))
                put("vocab", tool.get("vocab"))
            elif w == "scale":
                g = tool.get("gflops_median")
                if g is None and tool.get("tflops_median") is not None:
                    g = 1e3 * tool["tflops_median"]
                put("gflops", g)
                put("need", tool.get("need_total_mb"))
                put("loss_last", tool.get("loss_last_step"))
            elif w == "generate":
                put("ms_tok", tool.get("ms_per_token"))
                put("ms_tok_nocache", tool.get("nocache_ms_per_token"))
                put("floor_ms_tok", tool.get("floor_ms_per_token"))
                put("floor_gbps", tool.get("read_gbps_weights_size"))
                put("weight_mb", (tool.get("weight_bytes") or 0) / 1e6 or None)

    def med(self, w, s, t, m):
        vals = self.v.get((w, s, t, m))
        return statistics.median(vals) if vals else None

    def cell(self, w, s, t, m, fmt="{:.2f}"):
        vals = self.v.get((w, s, t, m))
        if not vals:
            return "-"
        out = fmt.format(statistics.median(vals))
        if len(vals) > 1:
            out += f" [{fmt.format(min(vals))}..{fmt.format(max(vals))}]"
        return out

    def reps(self, w, s, t, m):
        return len(self.v.get((w, s, t, m), []))


def ratio(a, b, fmt="{:.2f}"):
    return fmt.format(a / b) if a is not None and b not in (None, 0) else "-"


def faster(strata, torch, lower_is_better):
    if strata is None or torch is None or strata == 0 or torch == 0:
        return "-"
    x = torch / strata if lower_is_better else strata / torch
    return f"{x:.2f}x"


def status(ok, short):
    if ok is None:
        return "not measured"
    return "met" if ok else f"**short**: {short}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="folders written by bench/run.sh (OUT=...)")
    args = ap.parse_args()
    rows, settings = load(args.dirs)
    if not rows:
        raise SystemExit("no results.jsonl rows in " + " ".join(args.dirs))
    T = Table(rows)
    st = settings[-1] if settings else {}
    reps = max(r["rep"] for r in rows)
    ep = st.get("recipe_epochs", 100)
    print(f"# Strata vs PyTorch (bench/run.sh), {reps} repetition(s)"
          f"{' — QUICK' if st.get('quick') else ''}; commit {st.get('commit', '?')}, "
          f"{st.get('date', '')}\n")
    print(f"CPU: {st.get('cpu_model', '?')}; Strata built for **{st.get('isa', '?')}**; "
          f"OpenBLAS core **{st.get('blas_core', '?')}**"
          f"{' (OPENBLAS_CORETYPE=' + st['openblas_coretype'] + ')' if st.get('openblas_coretype') else ''}."
          "\n")
    print("Medians over repetitions, [min..max]. 1T / 2T = 1 / 2 threads. "
          "\"x faster\" > 1 means Strata is faster.\n")

    # ---- main table
    print("| workload | metric | Strata 1T | Strata 2T | Strata 2T/1T | PyTorch 1T | PyTorch 2T "
          "| Strata vs PyTorch 1T / 2T |")
    print("|---|---|---|---|---|---|---|---|")
    c, m = T.cell, T.med

    def row(name, metric, w, key, lower, fmt="{:.2f}", torch_key=None, note_torch=""):
        tk = torch_key or key
        s1, s2 = m(w, "strata", 1, key), m(w, "strata", 2, key)
        t1, t2 = m(w, "torch", 1, tk), m(w, "torch", 2, tk)
        print(f"| {name} | {metric} | {c(w, 'strata', 1, key, fmt)} | {c(w, 'strata', 2, key, fmt)} "
              f"| {ratio(s2, s1)} | {c(w, 'torch', 1, tk, fmt)}{note_torch} | "
              f"{c(w, 'torch', 2, tk, fmt)} | {faster(s1, t1, lower)} / {faster(s2, t2, lower)} |")

    row(f"RustGPT recipe ({ep}+{ep} epochs, batch 1)", "wall s (lower is better)", "recipe",
        "time", True, note_torch=" (loop only)")
    print(f"| | CPU s of the process (user + sys; robust to time-sharing) | "
          f"{c('recipe', 'strata', 1, 'cpu')} | {c('recipe', 'strata', 2, 'cpu')} | "
          f"{ratio(m('recipe', 'strata', 2, 'cpu'), m('recipe', 'strata', 1, 'cpu'))} | "
          f"{c('recipe', 'torch', 1, 'cpu')} (whole process) | - | "
          f"{faster(m('recipe', 'strata', 1, 'cpu'), m('recipe', 'torch', 1, 'cpu'), True)} / - |")
    print(f"| recipe BLAS floor (recipe_floor.c, 1T) | s: matrix products + Adam | "
          f"{c('recipe', 'floor', 1, 'time')} = {c('recipe', 'floor', 1, 'floor_matmul')} + "
          f"{c('recipe', 'floor', 1, 'floor_adam')}; process CPU s "
          f"{c('recipe', 'floor', 1, 'cpu')} | | | | | |")
    row("chat data, batch 16", "training tokens/s", "batched", "tok_s", False, "{:.0f}")
    row("d=512 h=2048 L=6 T=256 B=16 V=4096", "model GFLOP/s", "scale", "gflops", False, "{:.1f}")
    best = lambda t: max(T.v.get(("gemm", "strata", t, "gflops")) or [0]) or None
    ceil = {t: best(t) for t in (1, 2)}
    pct = {}
    for side in ("strata", "torch"):
        for t in (1, 2):
            g = m("scale", side, t, "gflops")
            pct[(side, t)] = 100 * g / ceil[t] if g is not None and ceil[t] else None
    fp = lambda v: "-" if v is None else f"{v:.0f}%"
    print(f"| | % of SGEMM ceiling | {fp(pct[('strata', 1)])} | {fp(pct[('strata', 2)])} | | "
          f"{fp(pct[('torch', 1)])} | {fp(pct[('torch', 2)])} | |")
    fc = lambda v: "-" if v is None else f"{v:.1f}"
    print(f"| SGEMM ceiling, one cblas_sgemm 2048^3 | GFLOP/s: best repetition (all repetitions) | "
          f"{fc(ceil[1])} ({c('gemm', 'strata', 1, 'gflops', '{:.1f}')}) "
          f"| {fc(ceil[2])} ({c('gemm', 'strata', 2, 'gflops', '{:.1f}')}) | "
          f"{ratio(ceil[2], ceil[1])} | | | |")
    row("greedy generation, 40 tokens", "ms/token: Strata KV cache, PyTorch no cache", "generate",
        "ms_tok", True, "{:.4f}")
    row("", "ms/token, Strata without cache", "generate", "ms_tok_nocache", True, "{:.4f}",
        torch_key="ms_tok")
    fl = m("generate", "strata", 1, "floor_ms_tok")
    if fl:
        print(f"| | memory-bandwidth floor, ms/token: {c('generate', 'strata', 1, 'weight_mb')} MB "
              f"of weights / {c('generate', 'strata', 1, 'floor_gbps', '{:.1f}')} GB/s read "
              f"| {c('generate', 'strata', 1, 'floor_ms_tok', '{:.4f}')} | | | | | |")
    row("memory: recipe", "peak RSS MB", "recipe", "rss", True, "{:.1f}")
    row("memory: d=512 scale", "peak RSS MB", "scale", "rss", True, "{:.0f}")
    need = m("scale", "strata", 1, "need") or m("scale", "strata", 2, "need")
    if need:
        r1, r2 = m("scale", "strata", 1, "rss"), m("scale", "strata", 2, "rss")
        print(f"| | need: params+grads+Adam+activations = {need:.0f} MB; RSS / need | "
              f"{ratio(r1, need)} | {ratio(r2, need)} | | | | |")

    # ---- targets
    print("\n## Targets (issue 5, issue 14)\n")
    loads = [r["other_cores_during"] for r in rows if r.get("exit_code", 0) == 0]
    busy = statistics.median(loads) if loads else 0
    if busy > 0.5:
        print(f"**Warning: the host was loaded: other processes used {busy:.2f} cores (median over "
              f"runs) of {st.get('cores', '?')}.** Wall times are inflated and 2-thread figures "
              "(PyTorch's above all: its threads spin-wait on a busy core) are not what an idle "
              "machine gives; the CPU-second row and the ratios between interleaved runs are the "
              "more reliable figures. Rerun with WAIT_QUIET=60 when the host is quieter.\n")
    print("| # | target | measured | status |")
    print("|---|---|---|---|")
    s1, s2 = m("recipe", "strata", 1, "time"), m("recipe", "strata", 2, "time")
    fl, tr = m("recipe", "floor", 1, "time"), m("recipe", "torch", 1, "time")
    if s1 and fl:
        x = s1 / fl
        print(f"| 1 | recipe 1T <= 1.2x recipe_floor | {x:.2f}x ({s1:.2f} s vs {fl:.2f} s) | "
              f"{status(x <= 1.2, f'{x / 1.2:.2f}x too slow (needs <= {1.2 * fl:.2f} s)')} |")
    cs, cf = m("recipe", "strata", 1, "cpu"), m("recipe", "floor", 1, "cpu")
    if cs and cf:
        x = cs / cf
        print(f"| 1 | (same, in CPU seconds of the processes) | {x:.2f}x ({cs:.2f} s vs {cf:.2f} s) | "
              f"{status(x <= 1.2, f'{x / 1.2:.2f}x too slow')} |")
    if s1 and tr:
        x = tr / s1
        print(f"| 1 | recipe >= 5x faster than PyTorch (1T) | {x:.2f}x | "
              f"{status(x >= 5, f'{5 / x:.2f}x too slow')} |")
    if s1 and s2:
        x = s2 / s1
        print(f"| 1 | recipe 2T <= 0.8x of 1T | {x:.2f} | {status(x <= 0.8, f'{x / 0.8:.2f}x too slow')} |")
    for t in (1, 2):
        sb, tb = m("batched", "strata", t, "tok_s"), m("batched", "torch", t, "tok_s")
        if sb and tb:
            x = sb / tb
            print(f"| 2 | batched {t}T >= 2x PyTorch {t}T tokens/s | {x:.2f}x ({sb:.0f} vs {tb:.0f}) | "
                  f"{status(x >= 2, f'{2 / x:.2f}x too slow')} |")
    sb = m("batched", "strata", 2, "tok_s")
    if sb:
        print(f"| 2 | batched 2T >= 40,000 tokens/s | {sb:.0f} | "
              f"{status(sb >= 40000, f'{40000 / sb:.2f}x too slow')} |")
    for t in (1, 2):
        p = pct[("strata", t)]
        if p is not None:
            print(f"| 3 | d=512 {t}T >= 75% of SGEMM ceiling | {p:.0f}% of {ceil[t]:.1f} GFLOP/s | "
                  f"{status(p >= 75, f'{75 / p:.2f}x too slow')} |")
    g = m("generate", "strata", 1, "ms_tok")
    gt = m("generate", "torch", 1, "ms_tok")
    if g:
        print(f"| 4 | generation <= 0.05 ms/token (KV cache, 1T) | {g:.4f} ms | "
              f"{status(g <= 0.05, f'{g / 0.05:.2f}x too slow')} |")
    if g and gt:
        x = gt / g
        print(f"| 4 | generation >= 10x PyTorch (no cache), 1T | {x:.1f}x | "
              f"{status(x >= 10, f'{10 / x:.2f}x too slow')} |")
    for t in (1, 2):
        r = m("recipe", "strata", t, "rss")
        if r:
            print(f"| 5 | recipe {t}T peak RSS <= 40 MB | {r:.1f} MB | "
                  f"{status(r <= 40, f'{r - 40:.1f} MB over')} |")
    if need:
        for t in (1, 2):
            r = m("scale", "strata", t, "rss")
            if r:
                x = r / need
                print(f"| 5 | d=512 {t}T peak RSS <= 1.3x need ({need:.0f} MB) | {x:.2f}x ({r:.0f} MB) | "
                      f"{status(x <= 1.3, f'{r - 1.3 * need:.0f} MB over')} |")
    # ---- issue 14's targets (the same on every ISA: run once per ISA, bench/README.md)
    s1r, flr = m("recipe", "strata", 1, "time"), m("recipe", "floor", 1, "time")
    if s1r and flr:
        x = s1r / flr
        print(f"| 14 | recipe 1T <= 1.1x recipe_floor | {x:.2f}x | "
              f"{status(x <= 1.1, f'{x / 1.1:.2f}x too slow')} |")
    s2r = m("recipe", "strata", 2, "time")
    if s2r and flr:
        x = s2r / flr
        print(f"| 14 | recipe 2T <= 0.6x the 1T floor | {x:.2f}x | "
              f"{status(x <= 0.6, f'{x / 0.6:.2f}x too slow')} |")
    sb, tb = m("batched", "strata", 1, "tok_s"), m("batched", "torch", 1, "tok_s")
    if sb and tb:
        print(f"| 14 | batched 1T >= 2x PyTorch 1T | {sb / tb:.2f}x | "
              f"{status(sb / tb >= 2, f'{2 / (sb / tb):.2f}x too slow')} |")
    if g and gt:
        x = gt / g
        print(f"| 14 | KV-cache generation >= 25x PyTorch (no cache), 1T | {x:.1f}x | "
              f"{status(x >= 25, f'{25 / x:.2f}x too slow')} |")
    gf = m("generate", "strata", 1, "floor_ms_tok")
    if g and gf:
        x = g / gf
        print(f"| 14 | generation within 2x of the memory-bandwidth floor, 1T | {x:.2f}x "
              f"({g:.4f} vs {gf:.4f} ms) | {status(x <= 2, f'{x / 2:.2f}x too slow')} |")
    l1, l2 = m("recipe", "strata", 1, "loss_instruct"), m("recipe", "strata", 2, "loss_instruct")
    if l1 is not None and l2 is not None:
        print(f"| 14 | recipe losses identical at 1T and 2T | {l1:.6f} vs {l2:.6f} | "
              f"{status(l1 == l2, 'they differ')} |")
    checks = [("recipe wall", "recipe", "time", True), ("batched tokens/s", "batched", "tok_s", False),
              ("scale GFLOP/s", "scale", "gflops", False), ("generation ms/token", "generate", "ms_tok", True)]
    for name, w, k, lower in checks:
        a, b = m(w, "strata", 1, k), m(w, "strata", 2, k)
        if a and b:
            slower = b / a if lower else a / b  # > 1: 2 threads slower
            print(f"| 6 | {name}: 2T not slower than 1T | 2T/1T time {slower:.2f} | "
                  f"{status(slower <= 1.0, f'2T is {100 * (slower - 1):.0f}% slower')} |")

    # ---- sanity and host load
    print("\n## Sanity: same work on both sides\n")
    print("| workload | quantity | Strata 1T | Strata 2T | PyTorch 1T |")
    print("|---|---|---|---|---|")
    for w, k, name, fmt in [("recipe", "vocab", "vocabulary", "{:.0f}"),
                            ("recipe", "loss_pretrain", "last pre-training epoch loss", "{:.4f}"),
                            ("recipe", "loss_instruct", "last chat epoch loss", "{:.4f}"),
                            ("batched", "tokens_per_epoch", "training tokens per epoch", "{:.0f}"),
                            ("batched", "loss_last", "last epoch loss", "{:.4f}"),
                            ("scale", "loss_last", "last step loss", "{:.4f}")]:
        print(f"| {w} | {name} | {c(w, 'strata', 1, k, fmt)} | {c(w, 'strata', 2, k, fmt)} | "
              f"{c(w, 'torch', 1, k, fmt)} |")
    print("\n## Host load: cores busy with other processes during the runs (median [min..max])\n")
    print("| workload | Strata | PyTorch | floor |")
    print("|---|---|---|---|")
    for w in ("gemm", "recipe", "batched", "scale", "generate"):
        cells = []
        for s in ("strata", "torch", "floor"):
            v = T.load.get((w, s))
            cells.append("-" if not v else f"{statistics.median(v):.2f} [{min(v):.2f}..{max(v):.2f}]")
        if any(x != "-" for x in cells):
            print(f"| {w} | " + " | ".join(cells) + " |")
    failed = [r for r in rows if r.get("exit_code", 0) != 0]
    if failed:
        print(f"\n{len(failed)} run(s) FAILED and are left out: " +
              ", ".join(f"{r['workload']}/{r['side']}/{r['threads']}T rep {r['rep']}" for r in failed))


if __name__ == "__main__":
    main()
