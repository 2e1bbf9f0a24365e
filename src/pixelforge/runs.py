"""The layout of a training run folder, in one place.

```
RUN/
  run.json                      family, data spec and the full config (architecture fixed here)
  checkpoints/step-00000500/    one complete checkpoint, renamed into place atomically
    model/                      a model dir (config.json + model.safetensors, EMA weights)
    state.safetensors           every trained module, EMA copies and optimizer tensors
    state.json                  step, counters and optimizer hyper-parameters
  metrics.jsonl                 one JSON object per logged step
  tb/                           TensorBoard events
  samples/step-00000500.png     periodic sample grids
```
"""

from __future__ import annotations

import re
from pathlib import Path

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
MODEL_SUBDIR = "model"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
TENSORBOARD = "tb"

_CKPT = re.compile(r"^step-(\d{8})$")


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds a run (its run.json exists)."""
    return (path / RUN_FILE).is_file()


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint taken after ``step`` optimizer steps."""
    return f"step-{step:08d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of ``run_dir`` as (step, path), oldest first."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _CKPT.match(child.name)
        if m and child.is_dir() and (child / STATE_JSON).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None
