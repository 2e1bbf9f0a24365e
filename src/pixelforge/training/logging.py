"""What a run reports: metrics.jsonl, TensorBoard events and a Rich progress bar."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pixelforge import runs
from pixelforge.io.atomic import atomic_write_text


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` (a torn last line is ignored)."""
    path = run_dir / runs.METRICS
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


class RunLogger:
    """Logs every ``log_every`` steps; on resume drops rows past the resumed step."""

    def __init__(
        self,
        run_dir: Path,
        *,
        enabled: bool,
        tensorboard: bool,
        progress: bool,
        total: int,
        start: int,
        log_every: int = 10,
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.total = total
        self.start = start
        self.log_every = log_every
        self._tb_wanted = tensorboard and enabled
        self._progress_wanted = progress and enabled
        self._writer: Any = None
        self._progress: Progress | None = None
        self._task: Any = None
        self._file: Any = None
        self._t0 = 0.0
        self._last_t = 0.0
        self._last_step = start
        self._images = 0

    def __enter__(self) -> RunLogger:
        if not self.enabled:
            return self
        rows = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= self.start]
        atomic_write_text(self.run_dir / runs.METRICS, "".join(json.dumps(r) + "\n" for r in rows))
        self._file = open(self.run_dir / runs.METRICS, "a", encoding="utf-8")
        if self._tb_wanted:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                str(self.run_dir / runs.TENSORBOARD), purge_step=self.start + 1
            )
        if self._progress_wanted:
            self._progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=self.total, completed=self.start, speed="", losses=""
            )
        self._t0 = self._last_t = time.perf_counter()
        return self

    def step(
        self, step: int, values: dict[str, float], *, nonfinite_total: int, images: int
    ) -> None:
        if not self.enabled:
            return
        self._images += images
        if self._progress is not None:
            self._progress.update(self._task, completed=step)
        if step % self.log_every and step != self.total:
            return
        now = time.perf_counter()
        dt = max(now - self._last_t, 1e-9)
        speed = (step - self._last_step) / dt
        row = {
            "step": step,
            **{k: (v if math.isfinite(v) else None) for k, v in values.items()},
            "it_per_s": round(speed, 3),
            "images_per_s": round(self._images / dt, 2),
            "nonfinite_total": nonfinite_total,
            "elapsed_s": round(now - self._t0, 2),
        }
        self._last_t, self._last_step, self._images = now, step, 0
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(k if k == "lr" else f"loss/{k}", v, step)
        if self._progress is not None:
            losses = " ".join(f"{k}={v:.3g}" for k, v in values.items() if k != "lr")
            self._progress.update(self._task, speed=f"{speed:.2f} it/s", losses=losses)

    def extra(self, step: int, values: dict[str, float]) -> None:
        """Log values measured now and then (an evaluation), as their own row."""
        if not self.enabled:
            return
        self._file.write(json.dumps({"step": step, **values}) + "\n")
        self._file.flush()
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(f"eval/{k}", v, step)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
