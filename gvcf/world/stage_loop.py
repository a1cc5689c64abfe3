"""What every training stage's loop shares: the learning-rate schedule, one optimizer step, named data streams, the
loss log, atomic checkpoints and resuming a stage where its checkpoint stopped."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import torch

from .train_config import TrainConfig, checkpoint_path

LOG_FILE = "training_log.csv"   # kept in the work folder while training, copied into the model at the end


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def learning_rate(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warmup, then cosine decay to 1% of base."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))


class LossLog:
    """Append-only CSV loss log (stage, step, loss, seconds)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, stage: str, step: int, loss: float, seconds: float) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["stage", "step", "loss", "seconds"])
            w.writerow([stage, step, f"{loss:.6f}", f"{seconds:.1f}"])

    def forget(self, stage: str, after: int) -> None:
        """Drop the rows of `stage` past step `after`: a resumed (or retrained) stage logs those steps again."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        keep = rows[:1] + [r for r in rows[1:] if not (r[0] == stage and int(r[1]) > after)]
        if len(keep) < len(rows):
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(keep)
            os.replace(tmp, self.path)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    """One optimizer step on loss at learning rate lr."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def resume_stage(stage: str, work: Path, log: LossLog, gen: torch.Generator, **parts) -> tuple[int, dict]:
    """Load the stage's checkpoint, if any, into gen and into each named part (part.load_state_dict(state[name])),
    and drop the log rows the stage will write again; the step to go on from, and the checkpoint ({} if none)."""
    ckpt = checkpoint_path(work, stage)
    state = torch.load(ckpt, weights_only=False) if ckpt.exists() else {}
    if state:
        gen.set_state(state["gen"])
        for name, part in parts.items():
            part.load_state_dict(state[name])
    start = state.get("step", 0)
    log.forget(stage, start)
    return start, state


def log_and_save(stage: str, done: int, total: int, loss: float, seconds: float, log: "LossLog", every: int,
                 ckpt: Path, state) -> bool:
    """Log every 25 steps; checkpoint state() every `every` steps and at the end. True when it saved."""
    if done % 25 == 0:
        log.write(stage, done, loss, seconds)
    if done % every == 0 or done == total:
        atomic_save(state(), ckpt)
        return True
    return False


def data_stream(cfg: TrainConfig, stream: str) -> np.random.Generator:
    """Independent, named numpy streams derived from the run seed."""
    return np.random.default_rng([cfg.seed, *stream.encode()])
