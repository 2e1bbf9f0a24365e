"""Trainer overhead: DCGAN images/s through pixelforge's Trainer against a bare PyTorch loop.

Run from the project root::

    .venv/bin/python benchmarks/trainer_overhead.py [--steps 40] [--rounds 5] [--threads 2]
        [--chunk 2] [--warmup 10] [--max-other-cpu 5] [--json-out PATH]

Both loops train the same DCGAN architecture (built from the same resolved config, same seed,
so the same initial weights) on the same in-memory ``digits`` tensor at the same batch size, in
one process. After ``--warmup`` untimed steps of each, ``--rounds`` rounds each time ``--steps``
steps of the bare loop and ``--steps`` steps of ``Trainer.run_step``, interleaved in chunks of
``--chunk`` steps whose order alternates (bare, pixelforge, pixelforge, bare, ...), so that
drift in machine speed hits both loops alike. (Whole 40-step blocks, one loop after the other,
proved too coarse on a shared 2-core VM: two copies of the *same* loop differed by up to 5%.)

Reported per configuration: each loop's images/s per round, their medians, ``overhead_pct =
(bare - pixelforge) / bare * 100`` of the medians, and the median of the per-round paired
overheads. Each round also records ``other_cpu_pct``, the share of all cores that other
processes used meanwhile (from /proc/stat); a round above ``--max-other-cpu`` is reported but
left out of the medians (``rounds_used``; the figures over all rounds are under
``all_rounds``). ``Trainer.fit()`` is then timed once end to end over ``--steps`` steps on a
fresh run and reported separately (it includes run.json, logging and the final checkpoint).

Two configurations: the default DCGAN (32x32, unconditional, widths 64, z 100) as the headline,
and the demo's class-conditional one (widths 32, z 64, 10 classes taken from the data).

This is a benchmark, not a test: it prints one JSON document and asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from machine import busy_cpu_seconds, cpu_model  # benchmarks/machine.py
from pixelforge.config import to_dict
from pixelforge.models.dcgan import DCGAN
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

BATCH_SIZE = 64
DATA = "digits"
CONFIGS: dict[str, dict[str, Any]] = {
    "default (unconditional)": {"image_size": 32, "num_classes": 0},
    "demo (class-conditional)": {
        "image_size": 32,
        "num_classes": None,
        "g_width": 32,
        "d_width": 32,
        "z_dim": 64,
    },
}


def train_overrides(steps: int) -> dict[str, Any]:
    """Training options: CPU, batch 64, and no periodic checkpoints, samples or TensorBoard."""
    return {
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "device": "cpu",
        "checkpoint_every": 10**9,
        "sample_every": 0,
        "tensorboard": False,
        "log_every": 50,
    }


def make_trainer(model: dict[str, Any], run_dir: Path, steps: int) -> Trainer:
    """A fresh pixelforge Trainer on ``digits`` with the given model overrides."""
    spec, _ = prepare_run(
        "dcgan", DATA, run_dir, overrides={"model": model, "train": train_overrides(steps)}
    )
    return Trainer(spec, run_dir, progress=False)


class BareLoop:
    """The PyTorch DCGAN example loop over pixelforge's DCGAN modules, with the same math.

    Per step: a batch from a random permutation of the same in-memory dataset (the dataset's
    own ``get_batch``), one latent draw and one generated batch used detached for the
    discriminator update and attached for the generator update, non-saturating losses via
    softplus, Adam(2e-4, (0.5, 0.999)) for each network, the discriminator frozen during the
    generator update, an EMA of the generator (``torch._foreach_lerp_`` on the weights,
    ``torch._foreach_copy_`` on the batch-norm buffers) and ``.item()`` of both losses.
    """

    def __init__(self, trainer: Trainer) -> None:
        cfg = trainer.spec.model
        torch.manual_seed(trainer.cfg.seed)  # the Trainer's seed: the same initial weights
        model = DCGAN(cfg)
        self.G = model.generator
        self.D = model.discriminator
        self.G.train()
        self.D.train()
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.ema_p: list[torch.Tensor] = list(self.G_ema.parameters())
        self.src_p: list[torch.Tensor] = list(self.G.parameters())
        self.ema_b = [b for b in self.G_ema.buffers() if b.is_floating_point()]
        self.src_b = [b for b in self.G.buffers() if b.is_floating_point()]
        self.ema_b_int = [b for b in self.G_ema.buffers() if not b.is_floating_point()]
        self.src_b_int = [b for b in self.G.buffers() if not b.is_floating_point()]
        self.dataset = trainer.dataset
        self.num_classes = int(cfg.num_classes)
        self.z_dim = int(cfg.z_dim)
        self.batch = BATCH_SIZE
        self.per_epoch = len(self.dataset) // self.batch
        self.perm = torch.randperm(len(self.dataset))
        self.i = 0
        self.ema_decay = 0.999

    def step(self) -> tuple[float, float]:
        """One training step; returns (loss_D, loss_G)."""
        if self.i == self.per_epoch:
            self.perm = torch.randperm(len(self.dataset))
            self.i = 0
        idx = self.perm[self.i * self.batch : (self.i + 1) * self.batch]
        self.i += 1
        data = self.dataset.get_batch(idx)
        real = data["image"]
        labels = data["label"] if self.num_classes else None
        fake_labels = torch.randint(self.num_classes, (self.batch,)) if self.num_classes else None
        fake = self.G(torch.randn(self.batch, self.z_dim), fake_labels)

        # Discriminator: real vs detached fake
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = (
            F.softplus(-self.D(real, labels)).mean()
            + F.softplus(self.D(fake.detach(), fake_labels)).mean()
        )
        loss_d.backward()
        self.opt_d.step()

        # Generator: the same fake batch, discriminator frozen
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-self.D(fake, fake_labels)).mean()
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        with torch.no_grad():
            torch._foreach_lerp_(self.ema_p, self.src_p, 1.0 - self.ema_decay)
            if self.ema_b:
                torch._foreach_copy_(self.ema_b, self.src_b)
            for dst, src in zip(self.ema_b_int, self.src_b_int, strict=True):
                dst.copy_(src)
        return loss_d.item(), loss_g.item()


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuMeter:
    """Wall time, and the share of all cores that other processes used, over a span."""

    def __init__(self) -> None:
        self.busy0, self.own0 = busy_cpu_seconds(), _own_cpu_seconds()
        self.start = time.perf_counter()

    def stop(self) -> tuple[float, float | None]:
        """(elapsed seconds, other processes' CPU in percent of the machine or None)."""
        elapsed = time.perf_counter() - self.start
        busy1, own1 = busy_cpu_seconds(), _own_cpu_seconds()
        if self.busy0 is None or busy1 is None:
            return elapsed, None
        other_s = max(0.0, (busy1 - self.busy0) - (own1 - self.own0))
        return elapsed, 100.0 * other_s / (elapsed * (os.cpu_count() or 1))


@dataclass
class Round:
    """One round: both loops' throughput, and the CPU other processes took meanwhile."""

    bare_images_per_s: float
    pixelforge_images_per_s: float
    other_cpu_pct: float | None  # share of all cores busy with other processes (None: unknown)

    @property
    def overhead_pct(self) -> float:
        return (
            (self.bare_images_per_s - self.pixelforge_images_per_s) / self.bare_images_per_s * 100
        )


def interleaved_round(
    bare: Callable[[], object], pixelforge: Callable[[], object], steps: int, chunk: int, r: int
) -> Round:
    """``steps`` steps of each loop in alternating chunks; the first chunk alternates by round."""
    loops = (bare, pixelforge)
    seconds = [0.0, 0.0]
    meter = CpuMeter()
    done = 0
    c = 0
    while done < steps:
        n = min(chunk, steps - done)
        order = (0, 1) if (c + r) % 2 == 0 else (1, 0)
        for which in order:
            start = time.perf_counter()
            for _ in range(n):
                loops[which]()
            seconds[which] += time.perf_counter() - start
        done += n
        c += 1
    _, other = meter.stop()
    return Round(steps * BATCH_SIZE / seconds[0], steps * BATCH_SIZE / seconds[1], other)


def measure(
    name: str, model: dict[str, Any], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Interleaved rounds of both loops on one configuration, then one timed ``fit()``."""
    trainer = make_trainer(model, work / "steps", steps=10**6)
    bare = BareLoop(trainer)
    pf_step = 0

    def pixelforge_step() -> None:
        nonlocal pf_step
        trainer.run_step(pf_step)
        pf_step += 1

    for _ in range(args.warmup):
        bare.step()
        pixelforge_step()
    rounds = [
        interleaved_round(bare.step, pixelforge_step, args.steps, args.chunk, r)
        for r in range(args.rounds)
    ]

    # Trainer.fit() end to end over --steps steps on a fresh run (includes the final checkpoint)
    fit_trainer = make_trainer(model, work / "fit", steps=args.steps)
    meter = CpuMeter()
    fit_trainer.fit()
    fit_seconds, fit_other = meter.stop()
    fit_ips = args.steps * BATCH_SIZE / fit_seconds

    quiet = [
        i
        for i, rd in enumerate(rounds)
        if rd.other_cpu_pct is None or rd.other_cpu_pct <= args.max_other_cpu
    ]
    used = quiet or list(range(len(rounds)))  # every round disturbed: summarise them all
    summary = summarise([rounds[i] for i in used])
    bare_med = summary["bare_images_per_s"]
    return {
        "name": name,
        "model": to_dict(trainer.spec.model),
        **summary,
        "rounds_used": used,
        "all_rounds": summarise(rounds),
        "rounds": {
            "bare_images_per_s": [round(rd.bare_images_per_s, 1) for rd in rounds],
            "pixelforge_images_per_s": [round(rd.pixelforge_images_per_s, 1) for rd in rounds],
            "paired_overhead_pct": [round(rd.overhead_pct, 2) for rd in rounds],
            "other_cpu_pct": [_round(rd.other_cpu_pct) for rd in rounds],
        },
        "fit": {
            "steps": args.steps,
            "seconds": round(fit_seconds, 3),
            "images_per_s": round(fit_ips, 1),
            "other_cpu_pct": _round(fit_other),
            "vs_bare_median_pct": round((bare_med - fit_ips) / bare_med * 100, 2),
        },
    }


def summarise(rounds: list[Round]) -> dict[str, float]:
    """Medians of each loop's images/s, the overhead of those medians, and the paired median."""
    bare_med = statistics.median(rd.bare_images_per_s for rd in rounds)
    pf_med = statistics.median(rd.pixelforge_images_per_s for rd in rounds)
    return {
        "bare_images_per_s": round(bare_med, 1),
        "pixelforge_images_per_s": round(pf_med, 1),
        "overhead_pct": round((bare_med - pf_med) / bare_med * 100, 2),
        "paired_overhead_pct_median": round(statistics.median(rd.overhead_pct for rd in rounds), 2),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40, help="timed steps per loop per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--chunk", type=int, default=2, help="steps per turn when interleaving")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps of each loop first")
    p.add_argument(
        "--max-other-cpu",
        type=float,
        default=5.0,
        help="leave out of the medians a round in which other processes used more than this "
        "percent of the machine's CPU (all rounds if none is left)",
    )
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if min(args.steps, args.rounds, args.threads, args.chunk) < 1 or args.warmup < 0:
        p.error("--steps, --rounds, --threads and --chunk must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="pixelforge-bench-") as tmp:
        for i, (name, model) in enumerate(CONFIGS.items()):
            results.append(measure(name, model, args, Path(tmp) / f"config-{i}"))
    report = {
        "benchmark": "trainer_overhead",
        "command": " ".join([".venv/bin/python", "benchmarks/trainer_overhead.py", *sys.argv[1:]]),
        "date_utc": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "data": DATA,
        "batch_size": BATCH_SIZE,
        "steps_per_round": args.steps,
        "chunk": args.chunk,
        "rounds": args.rounds,
        "warmup_steps": args.warmup,
        "max_other_cpu_pct": args.max_other_cpu,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
