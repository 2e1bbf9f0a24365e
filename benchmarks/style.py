"""Style transfer: speed of the fast network against Gatys optimisation, the losses each reaches,
and the README's picture grid.

Run from the project root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/style.py speed --model RUN [--sizes 256 512]
        [--gatys-iterations 500] [--threads 2]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/style.py losses --models mosaic=RUN1 strokes=RUN2
        [--iterations 500] [--size 256] [--vgg-weights vgg19.safetensors]
        [--out docs/images/style-grid.png]

``speed``: for each side S, one content photo (scikit-image's chelsea, resized to S x S) goes
through the fast-style network (``--rounds`` timed runs after one warm-up, median) and through
``--gatys-iterations`` L-BFGS loss evaluations of :func:`pixelforge.style.gatys.style_transfer`
(one run, wall time measured); both in the same process, one after the other, so the ratio is
fair on a noisy machine.

``losses``: for each style (a built-in style image, the one the fast model was trained on) and
each content photo (chelsea and astronaut, never trained on), the Gatys objective's content and
style terms (relative: content MSE of relu4_2 / its mean square, Gram MSE per layer / the target
Gram's mean square, VGG19) of: the content itself, the fast network's output, and Gatys' output
after ``--iterations`` L-BFGS evaluations, all at ``--size``. The same VGG19 judges every method:
the real weights when found (or given), else the seeded random-weight fallback (the JSON says
which, by its SHA-256 or ``random:0``).

With ``--out``, the same images as a grid: one row per content photo, the photo then, per style,
the style image, the fast output and the Gatys output.

A benchmark, not a test: it prints one JSON document (also written to ``--json-out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from machine import cpu_model  # benchmarks/machine.py
from pixelforge import hub
from pixelforge.features.vgg import RandomWeightsWarning
from pixelforge.style.builtin import render_style
from pixelforge.style.gatys import GatysConfig, GatysObjective, style_transfer, style_vgg
from pixelforge.tasks.image2image import apply_model

CONTENTS = ("chelsea", "astronaut")


def content_photo(name: str, side: int | None = None) -> torch.Tensor:
    """A scikit-image photo as 3 x H x W in [0, 1]; ``side``: resized to side x side."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)())
    if side is not None:
        image = image.resize((side, side), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def fit(image: torch.Tensor, longest: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    s = longest / max(h, w)
    size = (max(16, round(h * s)), max(16, round(w * s)))
    return F.interpolate(image[None], size=size, mode="bicubic", antialias=True)[0].clamp(0, 1)


def style_image(name: str, side: int = 256) -> torch.Tensor:
    return torch.from_numpy(render_style(name, side, seed=0).copy()).permute(2, 0, 1).float() / 255


def parse_models(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        style, _, model = item.partition("=")
        if not model:
            raise SystemExit(f"--models expects STYLE=MODEL, got '{item}'")
        out[style] = model
    return out


def bench_speed(args: argparse.Namespace) -> dict[str, Any]:
    model = hub.load(args.model)
    net = style_vgg(args.vgg_weights)
    style = style_image("mosaic")
    rows = []
    for side in args.sizes:
        content = content_photo("chelsea", side)
        apply_model(model, content)  # warm-up
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            apply_model(model, content)
            times.append(time.perf_counter() - t0)
        fast = statistics.median(times)
        cfg = GatysConfig.with_options(iterations=args.gatys_iterations, size=side)
        t0 = time.perf_counter()
        result = style_transfer(content, style, config=cfg, network=net)
        gatys = time.perf_counter() - t0
        rows.append(
            {
                "side": side,
                "fast_seconds": fast,
                "fast_seconds_all": times,
                "gatys_iterations": int(result.losses["iterations"]),
                "gatys_seconds": gatys,
                "ratio": gatys / fast,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "vgg19": net.weights_sha256}


def _cell(image: torch.Tensor, side: int) -> np.ndarray:
    """Fit into a side x side white cell."""
    small = fit(image, side)
    cell = np.full((side, side, 3), 255, np.uint8)
    h, w = small.shape[-2:]
    top, left = (side - h) // 2, (side - w) // 2
    pixels = (small.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    cell[top : top + h, left : left + w] = pixels
    return cell


def bench_losses(args: argparse.Namespace) -> dict[str, Any]:
    models = {k: hub.load(v) for k, v in parse_models(args.models).items()}
    net = style_vgg(args.vgg_weights)
    rows = []
    cells = {name: [_cell(fit(content_photo(name), args.size), args.cell)] for name in CONTENTS}
    for style_name, model in models.items():
        style = style_image(style_name)
        for content_name in CONTENTS:
            content = fit(content_photo(content_name), args.size)
            cfg = GatysConfig.with_options(iterations=args.iterations, size=args.size)
            objective = GatysObjective(net, content, [style], config=cfg)
            fast = apply_model(model, content)
            t0 = time.perf_counter()
            gatys = style_transfer(content, style, config=cfg, network=net).image
            seconds = time.perf_counter() - t0
            row: dict[str, Any] = {"style": style_name, "content": content_name}
            for method, image in (("content", content), ("fast", fast), ("gatys", gatys)):
                terms = objective.values(image)
                row[method] = {k: terms[k] for k in ("content", "style")}
            row["gatys_seconds"] = seconds
            rows.append(row)
            cells[content_name] += [_cell(x, args.cell) for x in (style, fast, gatys)]
            print(json.dumps(row), flush=True)
    means = {
        method: {
            term: statistics.mean(r[method][term] for r in rows) for term in ("content", "style")
        }
        for method in ("content", "fast", "gatys")
    }
    if args.out is not None:
        write_grid(list(cells.values()), args.out)
    return {"rows": rows, "mean": means, "vgg19": net.weights_sha256, "size": args.size}


def write_grid(cells: list[list[np.ndarray]], out: Path, gap: int = 4) -> None:
    """Rows of equal cells, separated by white gaps, as one PNG."""
    side = cells[0][0].shape[0]
    white = np.full((side, gap, 3), 255, np.uint8)
    lines = []
    for row in cells:
        parts: list[np.ndarray] = []
        for i, cell in enumerate(row):
            parts += [cell, white] if i < len(row) - 1 else [cell]
        lines.append(np.concatenate(parts, axis=1))
    hgap = np.full((gap, lines[0].shape[1], 3), 255, np.uint8)
    stacked: list[np.ndarray] = []
    for i, line in enumerate(lines):
        stacked += [line, hgap] if i < len(lines) - 1 else [line]
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(stacked, axis=0)).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "losses"])
    parser.add_argument("--model", help="speed: a fast-style model (dir, run dir or name)")
    parser.add_argument("--models", nargs="+", default=[], help="losses/grid: STYLE=MODEL ...")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gatys-iterations", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=500, help="losses/grid: Gatys")
    parser.add_argument("--size", type=int, default=256, help="losses/grid: longest side")
    parser.add_argument("--cell", type=int, default=160, help="grid: cell side in pixels")
    parser.add_argument("--out", type=Path, default=None, help="losses: also write the grid")
    parser.add_argument("--vgg-weights", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RandomWeightsWarning)  # the JSON names the weights used
    t0 = time.perf_counter()
    runner = {"speed": bench_speed, "losses": bench_losses}[args.what]
    result = runner(args)
    doc = {
        "benchmark": f"style {args.what}",
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "seconds": round(time.perf_counter() - t0, 1),
        "result": result,
    }
    text = json.dumps(doc, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
