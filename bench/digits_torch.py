#!/usr/bin/python3
"""The digits MLP of configs/digits_mlp.yaml in PyTorch, on the split a Strata run used.

    build/strata train configs/digits_mlp.yaml --out runs/digits_mlp
    /usr/bin/python3 bench/digits_torch.py runs/digits_mlp

Reads the run's split (RUN/split.json: the rows trained on and held out) and the data
file it names, builds the same network (Linear 64->128, ReLU, Dropout 0.1, Linear
128->10), optimizer (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8), feature scale (1/16),
epochs (30) and batch (32, shuffled every epoch), trains on one thread and prints the
held-out accuracy, the mean held-out loss and the training loop's wall time. The
initial weights and the shuffles come from torch's own generator (seeded by --seed), so
the accuracies of the two frameworks are comparable, not identical.
"""
import argparse
import json
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a Strata run directory of configs/digits_mlp.yaml")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    split = json.load(open(f"{args.run}/split.json"))
    rows = np.loadtxt(split["data"], delimiter=",", dtype=np.float32)
    x = torch.from_numpy(rows[:, :-1] * np.float32(0.0625))
    y = torch.from_numpy(rows[:, -1].astype(np.int64))
    train, held = torch.tensor(split["train"]), torch.tensor(split["held_out"])

    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()

    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = train[torch.randperm(len(train))]
        for first in range(0, len(order), args.batch):
            rows_ = order[first:first + args.batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x[rows_]), y[rows_])
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        logits = model(x[held])
        correct = int((logits.argmax(1) == y[held]).sum())
        mean_loss = float(loss_fn(logits, y[held]))
    print(f"pytorch {torch.__version__}: held-out accuracy {correct / len(held):.4f} "
          f"({correct}/{len(held)}), mean loss {mean_loss:.4f}, training loop {seconds:.2f} s "
          f"({args.epochs} epochs, batch {args.batch}, {args.threads} thread)")


if __name__ == "__main__":
    main()
