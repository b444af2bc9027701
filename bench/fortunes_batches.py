#!/usr/bin/python3
"""Strata's batches of a corpus run as arrays, for bench/gpt_torch.py.

Reads the run's token file (DIR/cache/<phase>.tokens, docs/data.md: a 64-byte header
"STRATOK1", u32 width, u32 0, u64 tokens, ...; then little-endian ids) and the batch
trace of `strata train --trace-batches FILE` (one line per batch: `<phase> <batch>
<start>...`, and once per phase `<phase> validation <start>...`), and writes
batches.npy (steps, batch, window) and validation.npy (n, window) of token ids.
"""
import argparse
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--trace", required=True)
    ap.add_argument("--window", type=int, required=True, help="max_seq_len + 1")
    ap.add_argument("--stride", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--phase", default="pretrain")
    ap.add_argument("--out", required=True, help="folder for batches.npy, validation.npy")
    args = ap.parse_args()
    with open(args.tokens, "rb") as fh:
        header = fh.read(64)
    if header[:8] != b"STRATOK1":
        raise SystemExit(f"{args.tokens}: not a Strata token file")
    width, _, count = struct.unpack_from("<IIQ", header, 8)
    ids = np.memmap(args.tokens, dtype={2: "<u2", 4: "<u4"}[width], mode="r", offset=64,
                    shape=(count,))
    batches, validation = [], []
    with open(args.trace) as fh:
        for line in fh:
            fields = line.split()
            if fields[0] != args.phase:
                continue
            windows = [np.array(ids[int(s):int(s) + args.window], dtype=np.int64) for s in fields[2:]]
            (validation.extend if fields[1] == "validation" else batches.append)(windows)
    batches = [b for b in batches if len(b) == args.batch]  # an epoch's short last batch
    np.save(f"{args.out}/batches.npy", np.array(batches, dtype=np.int64))
    np.save(f"{args.out}/validation.npy", np.array(validation, dtype=np.int64))
    # The phase's steps, for the schedule: its windows (docs/data.md) less the held out.
    starts = len(range(0, count - args.window + 1, args.stride))
    if (starts - 1) * args.stride + args.window < count:
        starts += 1
    train = starts - len(validation)
    with open(f"{args.out}/phase_steps.txt", "w") as fh:
        print(-(-train // args.batch) * args.epochs, file=fh)
    print(f"{len(batches)} batches, {len(validation)} validation windows, {train} training windows")


if __name__ == "__main__":
    main()
