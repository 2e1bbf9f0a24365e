"""Every restoration command on one large photo, as a user runs it: wall time and peak memory.

The photo is scikit-image's astronaut enlarged to ``--size`` (default 1500x1000, 1.5 megapixels)
and saved as a JPEG; ``inpaint`` gets a centred box of a quarter of the area. Each command runs
as its own ``pixelforge`` process with the shipped default model, so the times include loading
the model and reading and writing the images. Also reported: how busy the rest of the machine
was while each one ran (other processes' CPU, in percent of all cores).

    python benchmarks/large_photo.py --out benchmarks/results/large_photo.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from machine import busy_cpu_seconds, cpu_model, other_cpu_seconds  # benchmarks/machine.py
from pixelforge.io.atomic import atomic_write_text

COMMANDS = {  # name: extra arguments after the input photo
    "upscale": ["--scale", "4"],
    "denoise": [],
    "restore-jpeg": [],
    "colorize": [],
    "remove-bg": [],
    "inpaint": ["--mask", "{mask}"],
    "uncrop": ["--extend", "0.5"],
}


def run(argv: list[str], log: Path) -> dict[str, float | None]:
    """Wall seconds, peak resident memory (MB) and other processes' CPU (percent) of one run
    (its messages go to ``log``: a pipe could fill up and stall it)."""
    busy0, start = busy_cpu_seconds(), time.perf_counter()
    with log.open("wb") as messages:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=messages)
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    other = other_cpu_seconds(busy0, usage.ru_utime + usage.ru_stime)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{log.read_text(errors='replace')}")
    return {
        "seconds": round(elapsed, 1),
        "peak_mb": round(usage.ru_maxrss / 1024),  # Linux: kilobytes
        "other_cpu_percent": (
            None if other is None else round(100.0 * other / (elapsed * (os.cpu_count() or 1)))
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1500x1000", help="WIDTHxHEIGHT of the photo")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    exe = shutil.which("pixelforge") or str(Path(sys.executable).with_name("pixelforge"))
    work = Path(tempfile.mkdtemp(prefix="pixelforge-large-"))
    try:
        photo = work / "photo.jpg"
        Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC).save(
            photo, quality=90
        )
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = 255
        Image.fromarray(mask).save(work / "mask.png")
        results = {}
        for name in args.commands.split(","):
            extra = [a.replace("{mask}", str(work / "mask.png")) for a in COMMANDS[name]]
            argv = [exe, name, str(photo), *extra, "--out", str(work / "out.png")]
            results[name] = run(argv, work / "messages.txt")
            print(name, json.dumps(results[name]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(
        {"photo": f"{width}x{height}", "cpu": cpu_model(), "cores": os.cpu_count(), **results},
        indent=1,
    )
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
