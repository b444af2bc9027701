#!/usr/bin/python3
"""PyTorch twin of a Strata pre-norm GPT, trained on Strata's own batches.

The model is Strata's `Embedding` + `TransformerBlock {norm: pre, activation: gelu,
bias: true, out_proj: true}` x L + `LayerNorm` + `OutputProjection {tie:
embedding.token, bias: false}`:

    x = tok[ids] + pos[:T]
    x = x + W_o concat_h softmax(mask(q_h k_h^T / sqrt(d/H))) v_h + b_o,  q = LN1(x) W_q + b_q ...
    x = x + fc2(gelu_tanh(fc1(LN2(x))))
    logits = LN_f(x) tok^T                       loss = mean next-token cross-entropy

Strata stores a Linear's weight as (in, out) (y = x W + b); the initial weights are
read from Strata's model.npz, so both sides start from the same numbers. The batches
are Strata's: an int array (steps, batch, T + 1) of token windows, in Strata's order
(bench/fortunes.sh writes it from the run's batch trace). The optimizer is AdamW with a
global-norm clip and Strata's warmup-cosine schedule (optimizers/schedule.cpp).

Prints one JSON line: steps, validation loss at the end, tokens/s of the training loop.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def set_threads(n):
    torch.set_num_threads(n)
    # This torch does its fp32 GEMMs in OpenBLAS, whose pool set_num_threads does not size.
    try:
        import ctypes
        with open("/proc/self/maps") as fh:
            libs = sorted({ln.split()[-1] for ln in fh if "openblas" in ln and "/" in ln})
        for path in libs:
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_set_num_threads"):
                lib.openblas_set_num_threads(n)
    except OSError:
        pass


class PreNormGpt(torch.nn.Module):
    def __init__(self, params, heads, eps=1e-5):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.p = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(torch.tensor(v, dtype=torch.float32))
             for k, v in params.items()})
        self.blocks = sorted({int(k.split(".")[1]) for k in params if k.startswith("blocks.")})

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def ln(self, x, prefix):
        return F.layer_norm(x, x.shape[-1:], self.w(prefix + ".gamma"), self.w(prefix + ".beta"),
                            self.eps)

    def attention(self, x, b):
        n, t, d = x.shape
        h = self.heads

        def proj(name):
            y = x @ self.w(f"{b}.attn.w_{name}") + self.w(f"{b}.attn.b_{name}")
            return y.view(n, t, h, d // h).transpose(1, 2)

        y = F.scaled_dot_product_attention(proj("q"), proj("k"), proj("v"), is_causal=True) \
            if hasattr(F, "scaled_dot_product_attention") else self.plain_attention(proj, t, d)
        y = y.transpose(1, 2).reshape(n, t, d)
        return y @ self.w(f"{b}.attn.w_o") + self.w(f"{b}.attn.b_o")

    def plain_attention(self, proj, t, d):
        q, k, v = proj("q"), proj("k"), proj("v")
        s = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        return torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v

    def forward(self, ids):
        t = ids.shape[1]
        x = self.w("embedding.token")[ids] + self.w("embedding.position")[:t]
        for i in self.blocks:
            b = f"blocks.{i}"
            x = x + self.attention(self.ln(x, b + ".ln1"), b)
            hidden = F.gelu(self.ln(x, b + ".ln2") @ self.w(b + ".ffn.fc1.weight")
                            + self.w(b + ".ffn.fc1.bias"), approximate="tanh")
            x = x + hidden @ self.w(b + ".ffn.fc2.weight") + self.w(b + ".ffn.fc2.bias")
        return self.ln(x, "final_norm") @ self.w("embedding.token").t()


def loss_of(model, windows):
    ids = torch.as_tensor(windows[:, :-1], dtype=torch.long)
    targets = torch.as_tensor(windows[:, 1:], dtype=torch.long)
    logits = model(ids)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def lr_at(step, total, lr, warmup, min_lr):
    if step < warmup:
        return lr * step / warmup
    decay = total - 1 - warmup
    if decay <= 0:
        return lr
    progress = min(1.0, (step - warmup) / decay)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def validation_loss(model, windows, batch):
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        chunk = windows[i:i + batch]
        total += float(loss_of(model, chunk)) * chunk.shape[0] * (chunk.shape[1] - 1)
        count += chunk.shape[0] * (chunk.shape[1] - 1)
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="Strata's initial model.npz")
    ap.add_argument("--batches", required=True, help=".npy int array (steps, batch, T+1)")
    ap.add_argument("--validation", required=True, help=".npy int array (n, T+1)")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--clip-norm", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--min-lr", type=float, default=None, help="warmup_cosine's; none: constant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="train on the first N batches (0: all)")
    ap.add_argument("--total-steps", type=int, default=0,
                    help="the phase's steps, for the schedule (0: --steps)")
    args = ap.parse_args()

    set_threads(args.threads)
    torch.manual_seed(0)
    params = dict(np.load(args.init))
    model = PreNormGpt(params, args.heads)
    batches = np.load(args.batches, mmap_mode="r")
    validation = np.load(args.validation)
    steps = args.steps or batches.shape[0]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=tuple(args.betas),
                                  eps=args.eps, weight_decay=args.weight_decay)
    initial = validation_loss(model, validation, batches.shape[1])
    tokens, start = 0, time.perf_counter()
    for step in range(steps):
        total = args.total_steps or steps
        lr = args.lr if args.min_lr is None else lr_at(step, total, args.lr, args.warmup, args.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        windows = np.array(batches[step])
        loss = loss_of(model, windows)
        loss.backward()
        if args.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
        optimizer.step()
        tokens += windows.shape[0] * (windows.shape[1] - 1)
    seconds = time.perf_counter() - start
    final = validation_loss(model, validation, batches.shape[1])
    json.dump({"side": "pytorch", "threads": args.threads, "steps": steps,
               "initial_validation_loss": initial, "validation_loss": final,
               "validation_perplexity": math.exp(final), "train_seconds": seconds,
               "tokens_per_second": tokens / seconds}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
