#!/usr/bin/env python3
"""Data-parallel scaling on paper (docs/distributed.md): predicted efficiency of Strata's
all-reduce data parallelism at N nodes on a given link, from compute per step and bytes
per step.

Model (weak scaling: every node keeps b sequences per step, the global batch is N b):
  t_compute(b) = b * T * flops_per_token / R            R: one node's training FLOP/s
  t_allreduce  = 2 (N-1)/N * S / BW + 2 (N-1) * k * alpha   (ring all-reduce of S bytes in
                 k buckets; each bucket's ring takes 2 (N-1) latency-bound hops)
  efficiency   = t_compute / (t_compute + t_allreduce)       (no overlap: a lower bound;
                 overlap with backward can hide up to ~2/3 of t_compute's worth)
and the per-node batch b needed for efficiency >= 0.8: t_compute(b) >= 4 t_allreduce.

Usage: scaling_model.py [--gflops R] [--alpha-us A] [--link-efficiency E] [--bucket-mb M]
"""
import argparse
import math


def transformer(name, d, hidden, layers, heads, T, V, prenorm, tied):
    """Parameter count and training FLOP per token of Strata's TransformerBlock stack."""
    if prenorm:  # gpt_prenorm.yaml: q, k, v, out projections with biases, GELU FFN
        attention = 4 * d * d + 4 * d
    else:  # rustgpt.yaml: q, k, v without biases, no output projection
        attention = 3 * d * d
    ffn = d * hidden + hidden + hidden * d + d
    norms = 2 * 2 * d
    block = attention + ffn + norms
    embedding = V * d + T * d  # tokens + positions
    output = 0 if tied else d * V + V
    final_norm = 2 * d if prenorm else 0
    params = layers * block + embedding + output + final_norm
    # 6 FLOP per weight used per token (forward 2, backward 4), the output projection
    # included even when tied; 12 L T d for the attention scores and weighted sums.
    flops = 6 * (layers * block + d * V) + 12 * layers * T * d
    return dict(name=name, params=params, T=T, flops_per_token=flops)


def allreduce_seconds(nodes, bytes_, gbit, alpha, link_eff, bucket_bytes):
    if nodes == 1:
        return 0.0
    bw = gbit * 1e9 / 8 * link_eff
    buckets = max(1, math.ceil(bytes_ / bucket_bytes))
    return 2 * (nodes - 1) / nodes * bytes_ / bw + 2 * (nodes - 1) * buckets * alpha


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gflops", type=float, default=50.0,
                    help="one node's training GFLOP/s (bench/mpi.sh 1 x threads: model GFLOP/s)")
    ap.add_argument("--alpha-us", type=float, default=30.0, help="per-hop latency, microseconds")
    ap.add_argument("--link-efficiency", type=float, default=0.9,
                    help="fraction of the line rate TCP achieves")
    ap.add_argument("--bucket-mb", type=float, default=4 * 1.048576, help="bucket size, MB")
    ap.add_argument("--batch", type=int, nargs=2, default=[16, 32],
                    metavar=("D512", "FORTUNES"), help="sequences per node for the table")
    a = ap.parse_args()
    R = a.gflops * 1e9
    models = [
        transformer("d=512 (bench scale)", 512, 2048, 6, 1, 256, 4096, prenorm=False, tied=False),
        transformer("fortunes-like", 256, 1024, 4, 4, 128, 4000, prenorm=True, tied=True),
    ]
    print(f"assumptions: node {a.gflops:g} GFLOP/s, latency {a.alpha_us:g} us per hop, "
          f"TCP at {a.link_efficiency:.0%} of line rate, buckets of {a.bucket_mb:.1f} MB, "
          "float32 gradients, no overlap\n")
    for m, b in zip(models, a.batch):
        S = 4 * m["params"]
        t_seq = m["T"] * m["flops_per_token"] / R
        print(f"## {m['name']}: {m['params']:,} parameters, all-reduce {S / 1e6:.1f} MB/step, "
              f"{m['flops_per_token'] / 1e6:.1f} MFLOP/token, {t_seq * 1e3:.1f} ms compute per "
              f"sequence of {m['T']}\n")
        print(f"| link | nodes | efficiency at b={b}/node | b/node for >= 80% | global batch |")
        print("|---|---|---|---|---|")
        for gbit in (10, 25, 100):
            for nodes in (2, 8, 32, 128):
                t_ar = allreduce_seconds(nodes, S, gbit, a.alpha_us * 1e-6, a.link_efficiency,
                                         a.bucket_mb * 1e6)
                eff = b * t_seq / (b * t_seq + t_ar)
                need = math.ceil(4 * t_ar / t_seq)
                print(f"| {gbit} Gbit/s | {nodes} | {eff:.0%} | {need} | {need * nodes} |")
        print()


if __name__ == "__main__":
    main()
