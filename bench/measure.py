#!/usr/bin/python3
"""Run one benchmark command and record it: one JSON line appended to --results.

Used by bench/run.sh for every run, Strata's and PyTorch's alike, so that both sides
are measured the same way from outside:
  wall_s           wall time of the whole process (start to exit)
  maxrss_mb        the process's peak resident memory (wait4 ru_maxrss, this child only)
  user_s, sys_s    its CPU time
  other_cores_*    cores busy with OTHER processes just before (0.3 s sample) and
                   during the run: (machine busy core-seconds from /proc/stat - the
                   child's CPU seconds) / wall seconds, as torch_reference.py does
  loadavg_*        /proc/loadavg before and after
plus what the tool itself reports (--parse):
  json          JSON objects the tool appended to --json-from (strata_bench, torch_reference.py)
  strata-train  `strata train`'s log: steps, training seconds, each phase's last loss
  floor         recipe_floor's summary line: matmul / adam / floor seconds, GFLOP/s
The tool's stdout and stderr go to --log. A one-line summary is printed.

  measure.py --results R.jsonl --log run.log --workload recipe --side strata --threads 1 \\
      --rep 1 --parse strata-train -- build/strata train configs/rustgpt.yaml ...
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


def proc_stat():
    """(total jiffies, idle jiffies) over all CPUs."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return sum(v[:8]), v[3] + (v[4] if len(v) > 4 else 0)


def busy_cores(s0, s1):
    ncpu = os.cpu_count() or 1
    return ncpu * (1.0 - (s1[1] - s0[1]) / max(1, s1[0] - s0[0]))


def loadavg():
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def parse_strata_train(text):
    out = {}
    m = re.search(r"trained (\d+) steps in ([0-9.]+) s", text)
    if m:
        out["steps"], out["train_s"] = int(m.group(1)), float(m.group(2))
    m = re.search(r"model: (\d+) parameters, vocabulary (\d+)", text)
    if m:
        out["params"], out["vocab"] = int(m.group(1)), int(m.group(2))
    last = {}
    for m in re.finditer(r"\[(\w+)\] epoch (\d+)/(\d+)\s+loss ([0-9.eE+-]+)", text):
        last[m.group(1)] = (int(m.group(2)), float(m.group(4)))
    for phase, (epoch, loss) in last.items():
        out[f"loss_last_{phase}"] = loss
        out[f"epochs_{phase}"] = epoch
    return [out]


def parse_floor(text):
    m = re.search(r"steps (\d+)\s+matmul ([0-9.]+) s \(([0-9.]+) GFLOP/s, ([0-9.]+) GFLOP\)\s+"
                  r"adam ([0-9.]+) s\s+floor ([0-9.]+) s", text)
    if not m:
        return [{}]
    return [{"steps": int(m.group(1)), "matmul_s": float(m.group(2)),
             "matmul_gflops": float(m.group(3)), "gflop": float(m.group(4)),
             "adam_s": float(m.group(5)), "floor_s": float(m.group(6))}]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--side", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rep", type=int, required=True)
    ap.add_argument("--parse", choices=["json", "strata-train", "floor", "none"], default="none")
    ap.add_argument("--json-from", help="file the tool appends its JSON objects to")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="first wait up to this many seconds until other processes use fewer "
                         "than --quiet-threshold cores (0: don't wait)")
    ap.add_argument("--quiet-threshold", type=float, default=0.3)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command")
    if args.json_from and os.path.exists(args.json_from):
        os.remove(args.json_from)

    waited, t_wait = 0.0, time.perf_counter()
    while True:
        s0 = proc_stat()
        time.sleep(0.3)
        s1 = proc_stat()
        other_before = busy_cores(s0, s1)
        waited = time.perf_counter() - t_wait
        if other_before < args.quiet_threshold or waited >= args.wait_quiet:
            break
    la0 = loadavg()
    with open(args.log, "ab") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    s2 = proc_stat()
    code = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    rec = {"workload": args.workload, "side": args.side, "threads": args.threads, "rep": args.rep,
           "cmd": cmd, "exit_code": code, "wall_s": wall, "maxrss_mb": ru.ru_maxrss * 1024 / 1e6,
           "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "minor_faults": ru.ru_minflt,
           "own_cores": cpu / wall,
           "other_cores_before": other_before, "waited_for_quiet_s": waited,
           # s1 is read right before the start: busy_cores(s1, s2) spans the run only
           "other_cores_during": max(0.0, busy_cores(s1, s2) - cpu / wall),
           "loadavg_before": la0, "loadavg_after": loadavg(),
           "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tool = []
    if args.parse == "json" and args.json_from and os.path.exists(args.json_from):
        with open(args.json_from) as fh:
            tool = [json.loads(ln) for ln in fh if ln.strip()]
    elif args.parse in ("strata-train", "floor"):
        with open(args.log, "rb") as fh:
            text = fh.read().decode(errors="replace")
        text = text[text.rfind("$ " + " ".join(cmd)):]
        tool = parse_strata_train(text) if args.parse == "strata-train" else parse_floor(text)
    if not tool:
        tool = [{}]
    with open(args.results, "a") as fh:
        for t in tool:
            r = dict(rec)
            r["tool"] = {k: v for k, v in t.items() if k not in ("answers",)}
            fh.write(json.dumps(r) + "\n")
    note = "" if code == 0 else f"  FAILED (exit {code}, see {args.log})"
    print(f"[rep {args.rep}] {args.workload:8} {args.side:6} threads={args.threads}: "
          f"wall {wall:7.2f} s  peak RSS {rec['maxrss_mb']:7.1f} MB  "
          f"own {rec['own_cores']:.2f} cores  other cores before {other_before:.2f} "
          f"during {rec['other_cores_during']:.2f}  loadavg {la0}{note}", flush=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
