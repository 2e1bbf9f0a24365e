"""Image-to-image translation on a task made offline: emoji from their edge sketches.

``data`` writes the task from the built-in ``emoji`` dataset at 64x64 (the installed colour-emoji
font): A = a sketch (black Sobel edges of the emoji's luma on white), B = the emoji. Every tenth
emoji is held out for testing; of the rest, ``paired/`` holds the aligned pairs pix2pix learns
from, and ``unpaired/`` gives CycleGAN the sketches of one half and the emoji of the other half,
so that no sketch has its emoji on the other side. ``figure`` draws held-out sketches through the
trained models beside the truth, and ``score`` gives their PSNR and SSIM on every held-out pair
(the sketch itself and the mean training emoji as baselines). The commands that train the models
are in docs/benchmarks.md.

    python benchmarks/translation.py data --out benchmarks/.cache/edges2emoji
    python benchmarks/translation.py score --data benchmarks/.cache/edges2emoji --model runs/e2e-p2p --model runs/e2e-cyc
    python benchmarks/translation.py figure --data benchmarks/.cache/edges2emoji --model runs/e2e-p2p --model runs/e2e-cyc --out docs/images/translation.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from pixelforge import hub
from pixelforge.data import open_dataset
from pixelforge.io.images import list_images, read_image, write_png
from pixelforge.tasks.translate import translate
from restoration import scores  # benchmarks/restoration.py: RGB PSNR and SSIM of two images

SIZE = 64  # side of the emoji and sketches
HOLD_OUT = 10  # every tenth emoji is a test pair
EDGE = 120.0  # Sobel magnitude (luma, 0-255) above which a pixel is drawn as an edge
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def sketch(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> its edges, black on white, H x W x 3 uint8."""
    y = np.pad(rgb.astype(np.float32) @ _LUMA, 1, mode="edge")
    gx = (y[:-2, 2:] + 2 * y[1:-1, 2:] + y[2:, 2:]) - (y[:-2, :-2] + 2 * y[1:-1, :-2] + y[2:, :-2])
    gy = (y[2:, :-2] + 2 * y[2:, 1:-1] + y[2:, 2:]) - (y[:-2, :-2] + 2 * y[:-2, 1:-1] + y[:-2, 2:])
    edges = np.where(np.hypot(gx, gy) > EDGE, 0, 255).astype(np.uint8)
    return np.repeat(edges[..., None], 3, axis=2)


def make_data(out: Path) -> None:
    emoji = open_dataset("emoji", image_size=SIZE, channels=3).images.permute(0, 2, 3, 1).numpy()
    train = 0
    for i, rgb in enumerate(emoji):
        name = f"{i:04d}.png"
        a = sketch(rgb)
        if i % HOLD_OUT == 0:
            sides = [("test/A", a), ("test/B", rgb)]
        else:
            half = "trainA" if train % 2 == 0 else "trainB"
            sides = [("paired/A", a), ("paired/B", rgb)]
            sides.append((f"unpaired/{half}", a if half == "trainA" else rgb))
            train += 1
        for folder, image in sides:
            (out / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(out / folder / name)
    print(f"wrote {len(emoji) - train} test pairs and {train} training pairs under {out}")


def test_pairs(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    files = sorted(list_images(data / "test" / "A"))
    return [(read_image(f), read_image(data / "test" / "B" / f.name)) for f in files]


def mean_emoji(data: Path) -> np.ndarray:
    files = sorted(list_images(data / "paired" / "B"))
    total = sum(read_image(f).astype(np.float64) for f in files)
    return np.rint(total / len(files)).astype(np.uint8)


def translated(model: object, image: np.ndarray) -> np.ndarray:
    """The model's translation of an H x W x 3 uint8 image, as H x W x 3 uint8."""
    out = translate(model, image)
    return (out.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def score(data: Path, models: list[str]) -> dict[str, dict[str, float]]:
    pairs = test_pairs(data)
    mean = mean_emoji(data)
    outputs: dict[str, list[np.ndarray]] = {
        "sketch (input)": [a for a, _ in pairs],
        "mean training emoji": [mean for _ in pairs],
    }
    for spec in models:
        model = hub.load(spec)
        outputs[spec] = [translated(model, a) for a, _ in pairs]
    result = {}
    for name, outs in outputs.items():
        rows = [scores(o, b) for o, (_, b) in zip(outs, pairs, strict=True)]
        result[name] = {
            "psnr": float(np.mean([r[0] for r in rows])),
            "ssim": float(np.mean([r[1] for r in rows])),
            "n": len(rows),
        }
    return result


def figure(data: Path, models: list[str], out: Path, count: int, scale: int) -> None:
    pairs = test_pairs(data)
    pick = np.linspace(0, len(pairs) - 1, count).round().astype(int)
    loaded = [(spec, hub.load(spec)) for spec in models]
    labels = ["sketch", *[f"{m.family} ({Path(spec).name})" for spec, m in loaded], "original"]
    side, pad, head = SIZE * scale, 4, 16
    canvas = Image.new(
        "RGB", (len(labels) * (side + pad) + pad, head + count * (side + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels):
        draw.text((pad + c * (side + pad), 2), label, fill=(0, 0, 0))
    for r, i in enumerate(pick):
        a, b = pairs[i]
        panels = [a, *[translated(model, a) for _, model in loaded], b]
        for c, p in enumerate(panels):
            im = Image.fromarray(p).resize((side, side), Image.NEAREST)
            canvas.paste(im, (pad + c * (side + pad), head + pad + r * (side + pad)))
    write_png(out, np.asarray(canvas), {"script": "benchmarks/translation.py figure"})
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data")
    p.add_argument("--out", type=Path, default=Path("benchmarks/.cache/edges2emoji"))
    for name in ("score", "figure"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, default=Path("benchmarks/.cache/edges2emoji"))
        p.add_argument("--model", action="append", required=True)
        p.add_argument("--out", type=Path)
        p.add_argument("--threads", type=int, default=1)
    sub.choices["figure"].add_argument("--count", type=int, default=6)
    sub.choices["figure"].add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    if args.command == "data":
        make_data(args.out)
        return
    torch.set_num_threads(args.threads)
    if args.command == "score":
        result = score(args.data, args.model)
        for name, row in result.items():
            print(f"{name:40s} PSNR {row['psnr']:.2f} dB  SSIM {row['ssim']:.3f}  (n={row['n']})")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    else:
        figure(
            args.data,
            args.model,
            args.out or Path("docs/images/translation.png"),
            args.count,
            args.scale,
        )


if __name__ == "__main__":
    main()
