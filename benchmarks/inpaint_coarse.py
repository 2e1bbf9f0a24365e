"""Probe: a network at a quarter of the image's scale that corrects the adaptive fill of a hole.

The shipped ``inpaint`` network runs at full resolution on 256-pixel crops and adds nothing that
holds on unseen photos to the adaptive fill of a large box (docs/benchmarks.md). What is left in
a box is its large-scale structure, so this probe asks whether a network that sees the whole
photo at 1/4 scale (120x80 for a 480x320 photo), where a step costs a sixteenth, learns a
correction of the fill that holds on photos it has not seen:

- ``pool``: examples from CSun_Hays80 (random 3:2 crops of 50-100% of the largest one, resized
  to 480x320, mirrored at random; 60% boxes of 15-35% of the area, half of them centred, 40%
  free-form strokes), reduced 4x (area mean for the pixels; a cell is in the hole when any of
  its pixels is), the hole filled at that scale by ``masks.adaptive_fill``;
- ``train``: a residual U-Net (``models.restore.UNet``, width 32, 3 halvings, 4 dilated blocks)
  learns the coarse truth minus the coarse fill in the hole, with the per-image PSNR loss;
- ``eval``: on a folder with the benchmark's masks (``benchmarks/masks.py``), the full-size
  adaptive fill plus the network's coarse correction enlarged bilinearly, in the hole; hole
  PSNR on the rounded uint8 result, as ``restoration.py inpaint`` scores models;
- ``carve``: photos of objects, animals and places from Debian's gcompris-qt-data, for ``pool
  --data`` (docs/benchmarks.md).
- ``leaves``: textured dead-leaves images, unlimited synthetic training data for ``pool --data``
  (docs/benchmarks.md).

    python benchmarks/inpaint_coarse.py pool --part 0 --n 2000 &
    python benchmarks/inpaint_coarse.py pool --part 1 --n 2000
    python benchmarks/inpaint_coarse.py train --steps 3000 --threads 1
    python benchmarks/inpaint_coarse.py eval --threads 1 --out benchmarks/results/inpaint_coarse_validation.json
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from pixelforge.models.restore import UNet
from pixelforge.restoration import masks as M
from pixelforge.training.restore import pixel_term
from restoration import hole_psnr, read_mask, to_uint8

SCALE = 4
H, W = 320, 480


def coarse(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The image reduced SCALE times by area means; a cell is in the hole if any pixel is."""
    h, w = x.shape[-2:]
    size = (round(h / SCALE), round(w / SCALE))
    return F.adaptive_avg_pool2d(x, size), F.adaptive_max_pool2d(m, size)


def crop(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ph, pw = photo.shape[:2]
    ch, cw = (ph, ph * 3 // 2) if ph * 3 // 2 <= pw else (pw * 2 // 3, pw)
    f = rng.uniform(0.5, 1.0)
    ch, cw = int(ch * f), int(cw * f)
    top, left = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    im = Image.fromarray(photo[top : top + ch, left : left + cw]).resize((W, H), Image.BICUBIC)
    a = np.asarray(im)
    if rng.random() < 0.5:
        a = a[:, ::-1]
    return a


def make_mask(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.6:
        area = rng.uniform(0.15, 0.35)
        return M.box_mask(H, W, area=area, rng=None if rng.random() < 0.5 else rng)
    return M.free_form_mask(H, W, rng)


# GCompris activities whose pictures are drawings, paintings or renders, not photos
NOT_PHOTOS = ("paintings", "details", "louis", "babyshapes", "clickgame", "gravity", "digital")
NOT_PHOTOS += ("leftright", "chronos", "solar")


def carve(args: argparse.Namespace) -> None:
    """Photos of objects, animals and places from Debian's gcompris-qt-data: the JPEG and WebP
    files inside its Qt resource files, kept when at least 200 px on the shorter side, under 30%
    of horizontally flat pixel pairs (drawings are flat) and under 5% black (cut-outs)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    for rcc in sorted(Path(args.gcompris).glob("usr/share/gcompris-qt/rcc/*.rcc")):
        if rcc.stem.startswith(NOT_PHOTOS):
            continue
        blob = rcc.read_bytes()
        starts = [("webp", i) for i in _find_all(blob, b"RIFF")]
        starts += [("jpg", i) for i in _find_all(blob, b"\xff\xd8\xff")]
        for kind, i in starts:
            if kind == "webp":
                if blob[i + 8 : i + 12] != b"WEBP":
                    continue
                data = blob[i : i + 8 + int.from_bytes(blob[i + 4 : i + 8], "little")]
            else:
                data = blob[i:]
            try:
                im = Image.open(io.BytesIO(data))
                im.load()
            except Exception:  # not an image: a marker by chance inside other data
                continue
            a = np.asarray(im.convert("RGB")).astype(np.int64)
            if min(a.shape[:2]) < 200:
                continue
            flat = float((np.abs(np.diff(a, axis=1)).sum(-1) == 0).mean())
            if flat < 0.3 and float((a.sum(-1) < 8).mean()) < 0.05:
                Image.fromarray(a.astype(np.uint8)).save(out / f"{rcc.stem}_{i}.png")
                kept += 1
    print(f"{kept} photos in {out}")


def _find_all(blob: bytes, marker: bytes) -> list[int]:
    found, i = [], blob.find(marker)
    while i >= 0:
        found.append(i)
        i = blob.find(marker, i + len(marker))
    return found


def leaves(args: argparse.Namespace) -> None:
    """Textured dead-leaves images (Lee, Mumford and Huang 2001): ellipses and rectangles of
    random orientation, sizes drawn from a power law (density ~ r^-3, so every scale has the
    same share of edges, as in photos), dropped one over another; each shape takes a colour
    from a random pixel of the photos in ``--data``, a linear shading and a share of one
    1/f noise field as its texture, and the whole is blurred slightly. Unlimited training
    images with photos' edge and spectrum statistics and no landscape layout."""
    from PIL import ImageDraw, ImageFilter

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    colours = np.concatenate(
        [read_image(f).reshape(-1, 3)[::97] for f in sorted(list_images(args.data))]
    ).astype(np.float32)
    fy, fx = np.meshgrid(np.fft.fftfreq(H), np.fft.fftfreq(W), indexing="ij")
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rmin, rmax = 4.0, 400.0
    for k in range(args.n):
        labels = Image.new("I", (W, H), 0)
        draw = ImageDraw.Draw(labels)
        count = 1500
        u = rng.random(count)  # r^-3 density: inverse CDF of r^-2 between rmin and rmax
        r = 1.0 / np.sqrt(u / rmax**2 + (1 - u) / rmin**2)
        for i in range(count):  # the first shapes end up at the back
            cx, cy = rng.uniform(-rmax / 4, W + rmax / 4), rng.uniform(-rmax / 4, H + rmax / 4)
            a, b = r[i], r[i] * rng.uniform(0.3, 1.0)
            t = rng.uniform(0, np.pi)
            c, s = np.cos(t), np.sin(t)
            if rng.random() < 0.5:
                n = 24
                ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
                px, py = a * np.cos(ang), b * np.sin(ang)
            else:
                px, py = np.array([a, -a, -a, a]), np.array([b, b, -b, -b])
            pts = list(zip(cx + c * px - s * py, cy + s * px + c * py, strict=True))
            draw.polygon(pts, fill=i + 1)
        lab = np.asarray(labels, dtype=np.int64)
        base = colours[rng.integers(len(colours), size=count + 1)]
        slope = rng.normal(0, 0.15, size=(count + 1, 2, 3)).astype(np.float32)
        amp = rng.uniform(0, 20, size=count + 1).astype(np.float32) * (rng.random(count + 1) < 0.5)
        noise = np.real(
            np.fft.ifft2(np.fft.fft2(rng.normal(size=(H, W))) / radius ** rng.uniform(0.5, 1.0))
        )
        noise = (noise / noise.std()).astype(np.float32)
        # each shape's shading is centred on its own visible pixels
        area = np.maximum(np.bincount(lab.ravel(), minlength=count + 1), 1)
        cy0 = (np.bincount(lab.ravel(), yy.ravel(), count + 1) / area).astype(np.float32)
        cx0 = (np.bincount(lab.ravel(), xx.ravel(), count + 1) / area).astype(np.float32)
        img = (
            base[lab]
            + slope[lab, 0] * (yy - cy0[lab])[..., None]
            + slope[lab, 1] * (xx - cx0[lab])[..., None]
            + (amp[lab] * noise)[..., None]
        )
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
        im.save(out / f"leaves_{k:04d}.png")
        if k % 50 == 0:
            print(f"image {k}", flush=True)


def pool(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    photos = [read_image(f) for f in sorted(list_images(args.data))]
    rng = np.random.default_rng(1000 + args.part)
    xs, fs, ms = [], [], []
    t0 = time.time()
    for b in range(args.n // 8):
        imgs = np.stack([crop(photos[rng.integers(len(photos))], rng) for _ in range(8)])
        mk = np.stack([make_mask(rng) for _ in range(8)])
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
        m = torch.from_numpy(mk).float()[:, None]
        xc, mc = coarse(x, m)
        fc = M.adaptive_fill(xc * (1 - mc), mc)
        xs.append(xc.half())
        fs.append(fc.half())
        ms.append(mc.bool())
        if b % 20 == 0:
            print(f"batch {b}, {time.time() - t0:.0f} s", flush=True)
    out = {"x": torch.cat(xs), "f": torch.cat(fs), "m": torch.cat(ms)}
    torch.save(out, Path(args.dir) / f"pool{args.part}.pt")


def correction(net: torch.nn.Module, f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The network's correction of the coarse fill ``f`` (in [0, 1]) in the coarse hole ``m``."""
    h, w = f.shape[-2:]
    inp = torch.cat([f * 2 - 1, m * 2 - 1], 1)
    inp = F.pad(inp, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")
    return net(inp)[..., :h, :w] / 2 * m


def make_net(width: int) -> torch.nn.Module:
    return UNet(4, 3, width, 4, 3)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    parts = [torch.load(p) for p in sorted(Path(args.dir).glob("pool*.pt"))]
    x = torch.cat([p["x"] for p in parts]).float()
    f = torch.cat([p["f"] for p in parts]).float()
    m = torch.cat([p["m"] for p in parts]).float()
    n = len(x)
    net = make_net(args.width)
    print(f"{n} examples, {sum(p.numel() for p in net.parameters())} parameters")
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(0)
    t0, run = time.time(), 0.0
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        i = torch.randint(0, n, (args.batch,), generator=g)
        xb, fb, mb = x[i], f[i], m[i]
        if args.augment:  # each batch turned by a random multiple of 90 degrees, maybe flipped
            turn = int(torch.randint(0, 8, (1,), generator=g))
            xb, fb, mb = (torch.rot90(t, turn % 4, (2, 3)) for t in (xb, fb, mb))
            if turn >= 4:
                xb, fb, mb = (t.flip(2) for t in (xb, fb, mb))
        out = fb + correction(net, fb, mb)
        loss = pixel_term(out, xb, mb, "psnr")  # each image's error in dB, averaged
        opt.zero_grad()
        loss.backward()
        opt.step()
        run += float(pixel_term(fb, xb, mb, "psnr") - loss.detach())
        if step % 100 == 0:
            print(f"step {step}, {time.time() - t0:.0f} s, gain over the fill {run / 100:.3f} dB")
            run = 0.0
    torch.save(net.state_dict(), Path(args.dir) / args.net)


def evaluate(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    cache = Path(args.dir) / f"fills_{folder.name}.pt"
    files = sorted(list_images(folder))[: args.limit]
    fills: dict[str, torch.Tensor] = torch.load(cache) if cache.exists() else {}
    cached = len(fills)
    net = make_net(args.width)
    net.load_state_dict(torch.load(Path(args.dir) / args.net))
    net.eval()
    result: dict[str, Any] = {"folder": str(folder), "images": len(files)}
    for kind in ("box", "free"):
        rows = []
        for p in files:
            clean = read_image(p)
            mask = read_mask(args.masks, kind, p.stem)
            x = torch.from_numpy(clean).permute(2, 0, 1).float()[None] / 255
            m = torch.from_numpy(mask).float()[None, None]
            key = f"{kind}/{p.name}"
            if key not in fills:  # the full-size fill takes seconds: kept between runs
                fills[key] = M.adaptive_fill(x * (1 - m), m)
            full = fills[key]
            xc, mc = coarse(x * (1 - m), m)
            with torch.no_grad():
                r = correction(net, M.adaptive_fill(xc, mc), mc)
            up = F.interpolate(r, size=x.shape[-2:], mode="bilinear", align_corners=False)
            rows.append(
                (
                    hole_psnr(to_uint8(full[0]), clean, mask),
                    hole_psnr(to_uint8((full + up * m)[0]), clean, mask),
                )
            )
        if len(fills) > cached:  # new fills: saved once per kind of hole
            torch.save(fills, cache)
            cached = len(fills)
        a = np.array(rows)
        result[kind] = {
            "adaptive_psnr": round(float(a[:, 0].mean()), 3),
            "coarse_net_psnr": round(float(a[:, 1].mean()), 3),
            "better_on": int((a[:, 1] > a[:, 0]).sum()),
        }
        print(kind, result[kind], flush=True)
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("carve", "leaves", "pool", "train", "eval"))
    ap.add_argument("--gcompris", default="/tmp/gcompris", help="carve: the unpacked package")
    ap.add_argument("--dir", default="benchmarks/.cache/inpaint_coarse")
    ap.add_argument("--data", default="../shared/data/CSun_Hays80")
    ap.add_argument("--part", type=int, default=0, help="pool: which part (its seed)")
    ap.add_argument(
        "--n", type=int, default=2000, help="pool: examples in this part; leaves: images"
    )
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--net", default="net.pt")
    ap.add_argument("--augment", action="store_true", help="train: turn and flip batches")
    ap.add_argument("--folder", default="benchmarks/.cache/validation")
    ap.add_argument("--masks", default="benchmarks/.cache/masks/validation")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--out", default="", help="eval: result JSON; carve, leaves: image folder")
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    {"carve": carve, "leaves": leaves, "pool": pool, "train": train, "eval": evaluate}[args.cmd](
        args
    )


if __name__ == "__main__":
    main()
