"""Timing whole runs, as `gvcf bench` and the paper's runtime table (Table 3) both do: warm-up, then repeats interleaved
run by run, CUDA synchronised around every timed call, the UNet's calls and batch rows counted during the warm-up."""
from __future__ import annotations

import contextlib
import statistics
import time
import types
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from .cache import hardware

WARMUP_RUNS = 1
HARDWARE_COLUMNS = ("device", "device_name", "cpu_threads", "torch", "diffusers")   # of cache.hardware()


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    """Seconds of one call of fn(), CUDA synchronised before and after."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


class UNetCounter:
    """Counts UNet calls and the batch rows they evaluate (a forward pre-hook, removed on exit)."""

    def __init__(self, unet):
        self.unet, self.calls, self.rows = unet, 0, 0

    def _hook(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.calls += 1
        self.rows += int(sample.shape[0])

    def __enter__(self):
        self.handle = self.unet.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


class StandInUNet(torch.nn.Module):
    """A stand-in for the UNet in gvcf.generate: forward returns run(sample, timestep, encoder_hidden_states, the other
    conditioning as a dict) as its .sample; without run, the sample itself (a UNet that does nothing: a loop timed with
    it measures the loop's own cost)."""

    def __init__(self, unet, run: Callable | None = None):
        super().__init__()
        self.config = unet.config
        self._where = (unet.device, unet.dtype)
        self._run = run

    @property
    def device(self) -> torch.device:
        return self._where[0]

    @property
    def dtype(self) -> torch.dtype:
        return self._where[1]

    def forward(self, sample, timestep, encoder_hidden_states=None, **kwargs):
        out = sample if self._run is None else self._run(sample, timestep, encoder_hidden_states, kwargs)
        return types.SimpleNamespace(sample=out)


@dataclass(frozen=True)
class Timing:
    """Seconds of one run's timed repeats, and the UNet calls and batch rows of one warm-up run."""
    seconds: tuple[float, ...]
    unet_calls: int = 0
    unet_rows: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def std(self) -> float:
        return statistics.stdev(self.seconds) if len(self.seconds) > 1 else 0.0


def time_runs(runs: Mapping[str, Callable[[int], object]], device, repeats: int,
              warmups: Mapping[str, Callable[[], object]] | None = None, unet=None) -> dict[str, Timing]:
    """The one timing loop of the benchmark and of the runtime table.

    Each run is warmed up first (WARMUP_RUNS calls of warmups[key], default the run itself; the UNet calls and batch
    rows on `unet`, when given, are counted there), then timed in `repeats` rounds, every run once a round in order
    (interleaved, so that a change in machine load affects them alike). A run is called with the round's index (its
    seed, for a run that varies one); CUDA is synchronised around every timed call."""
    warmups = warmups or {}
    counts = {}
    for key, run in runs.items():
        warmup = warmups.get(key, lambda run=run: run(0))
        with UNetCounter(unet) if unet is not None else contextlib.nullcontext() as counter:
            for _ in range(WARMUP_RUNS):
                timed(warmup, device)
        counts[key] = (0, 0) if counter is None else (counter.calls // WARMUP_RUNS, counter.rows // WARMUP_RUNS)
    seconds = {key: [] for key in runs}
    for i in range(repeats):
        for key, run in runs.items():
            seconds[key].append(timed(lambda: run(i), device))
    return {key: Timing(tuple(seconds[key]), *counts[key]) for key in runs}


def hardware_columns(device) -> dict:
    """cache.hardware's HARDWARE_COLUMNS: the hardware in the benchmark's rows and in the runtime table's attrs."""
    info = hardware(device)
    return {key: info[key] for key in HARDWARE_COLUMNS}
