"""VAE loss study: reconstruction losses of the ``vae`` family compared on one budget.

Run from the project root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vae_losses.py [--steps 400] [--batch 32]
        [--threads 1] [--arms ae-l2,vae-l2,...] [--json-out benchmarks/results/vae_losses.json]
        [--figure docs/images/vae-losses.png] [--work DIR] [--append-as NAME] [--rescore]

Every arm trains the same architecture (``vae`` at 32x32 RGB, widths 32, latent 32, VAE-GAN
discriminator width 32) on ``shapes`` (train split, 2,000 images) with the same steps, batch,
learning rate and seed, through :func:`pixelforge.api.train`; only the loss settings differ:

``ae-l2``            plain autoencoder (``model.variational=false``), L2
``vae-l2``           VAE, L2 (``beta`` 1)
``vae-l1``           VAE, L1
``vae-perceptual``   VAE, L1 + VGG16 perceptual loss (the family's ``recon_loss=perceptual``)
``vaegan-l2``        VAE-GAN: L2 + adversarial (``adv_weight``)
``vaegan-perceptual`` VAE-GAN: L1 + perceptual + adversarial

The perceptual loss uses torchvision's ImageNet VGG16 weights when ``pixelforge weights fetch``
has put them in place; otherwise :func:`pixelforge.features.vgg.vgg` falls back to a seeded
random-weight VGG16 with a warning. Which one ran is recorded (``vgg_weights``) in the output.

Measured per arm on the held-out split ``shapes:test`` (500 images), with the trained model's
EMA weights: reconstruction PSNR (dB, of the decoded posterior mean, images in [0, 1]); the
sharpness of the reconstructions against the real test images
(:mod:`pixelforge.metrics.sharpness`: ``sharpness_mean`` is the mean noise-corrected band
energy of a Gaussian-then-Laplacian filter, ``band_energy_mean`` the same before the noise
correction, ``noise_sigma_mean`` the estimated white-noise level; ``sharpness_log_ratio`` is
signed, negative = blurrier than real, ``sharpness_distance`` its absolute value,
``sharpness_wasserstein`` between the per-image log-sharpness distributions); domain FID and
KID (``shapes-cnn`` features, what ``eval_extractor=auto`` picks for shapes; **domain FID/KID:
not comparable with published FIDs**) of the reconstructions and of 500 random samples
(decoded N(0, I) latents, seed 1234) against the test images; and the samples' sharpness.
References on the same protocol: 500 train images (a real-vs-real floor), the test images
blurred with a Gaussian of sigma 1 px, and the test images with white noise of sigma 0.05.

The picture: the top row shows real test images; each following row is one arm, showing its
reconstructions of those images, then random samples.

This is a benchmark, not a test: it prints one JSON document (also written to ``--json-out``;
with ``--append-as NAME`` it is added to the existing ``--json-out`` under ``extra_runs.NAME``
instead) and asserts nothing. ``--rescore`` scores the runs kept in ``--work`` again without
training them (the training times come from the earlier ``--json-out``); the document says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from machine import busy_cpu_seconds, cpu_model  # benchmarks/machine.py
from pixelforge.api import train
from pixelforge.data import open_dataset
from pixelforge.features import get_extractor
from pixelforge.hub import load
from pixelforge.metrics import fid_from_features, kid, psnr
from pixelforge.metrics.sharpness import (
    band_energy,
    noise_sigma,
    sharpness,
    sharpness_distance,
    sharpness_log_ratio,
    sharpness_wasserstein,
)
from pixelforge.tasks.evaluate import extract_images

DATA, TEST = "shapes", "shapes:test"
EXTRACTOR = "shapes-cnn"  # what train.eval_extractor=auto picks for shapes
IMAGE_SIZE, CHANNELS = 32, 3
SAMPLE_SEED = 1234
TIMING_KEYS = ("train_cpu_s", "train_wall_s", "other_cpu_pct", "random_vgg_warning")
MODEL: dict[str, Any] = {"image_size": IMAGE_SIZE, "latent_dim": 32, "width": 32, "d_width": 32}
ARMS: dict[str, dict[str, Any]] = {
    "ae-l2": {"model": {"variational": False}, "train": {"recon_loss": "l2"}},
    "vae-l2": {"train": {"recon_loss": "l2"}},
    "vae-l1": {"train": {"recon_loss": "l1"}},
    "vae-perceptual": {"train": {"recon_loss": "perceptual"}},
    "vaegan-l2": {"train": {"recon_loss": "l2", "adv_weight": "ADV"}},
    "vaegan-perceptual": {"train": {"recon_loss": "perceptual", "adv_weight": "ADV"}},
}


def arm_config(arm: str, args: argparse.Namespace) -> dict[str, Any]:
    """The arm's nested config: the shared budget plus the arm's loss settings."""
    spec = ARMS[arm]
    train_cfg: dict[str, Any] = {
        "steps": args.steps,
        "batch_size": args.batch,
        "lr": args.lr,
        "beta": args.beta,
        "perceptual_weight": args.perceptual_weight,
        "seed": args.seed,
        "device": "cpu",
        "checkpoint_every": 10**9,
        "sample_every": 0,
        "tensorboard": False,
        "log_every": 50,
    }
    for k, v in spec["train"].items():
        train_cfg[k] = args.adv_weight if v == "ADV" else v
    return {"model": {**MODEL, **spec.get("model", {})}, "train": train_cfg}


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding) of N x C x H x W images."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class Judge:
    """Features and sharpness of the real test images, and the comparisons against them."""

    def __init__(self, real: torch.Tensor) -> None:
        self.extractor = get_extractor(EXTRACTOR)
        self.real = real
        self.real_feats = self.features(real)
        self.real_sharp = sharpness(real)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        got = extract_images(
            iter(images.split(250)), self.extractor, keep_features=True, gather=False
        )
        assert got.features is not None
        return got.features

    def compare(self, images: torch.Tensor) -> dict[str, Any]:
        """Domain FID/KID and sharpness of ``images`` (in [0, 1]) against the real test set."""
        feats = self.features(images)
        fid = fid_from_features(self.real_feats, feats)
        k = kid(self.real_feats, feats)
        s = sharpness(images)
        return {
            "domain_fid": round(fid.value, 4),
            "domain_kid": round(k.value, 5),
            "domain_kid_std": round(float(k.std or 0.0), 5),
            "sharpness_mean": float(f"{s.mean().item():.4g}"),
            "band_energy_mean": float(f"{band_energy(images).mean().item():.4g}"),
            "noise_sigma_mean": float(f"{noise_sigma(images).mean().item():.4g}"),
            "sharpness_log_ratio": round(sharpness_log_ratio(s, self.real_sharp), 4),
            "sharpness_distance": round(sharpness_distance(s, self.real_sharp), 4),
            "sharpness_wasserstein": round(sharpness_wasserstein(s, self.real_sharp), 4),
        }


def vgg_weights() -> str:
    """Which VGG16 the perceptual loss gets: a weights hash, or ``random:<seed>``."""
    from pixelforge.features.vgg import vgg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = vgg("vgg16")
    return str(net.weights_sha256)


def train_arm(arm: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Train one arm into ``out``; its CPU and wall time and the machine's other load."""
    cfg = arm_config(arm, args)
    busy0, wall0, cpu0 = busy_cpu_seconds(), time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train("vae", DATA, out, config=cfg)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    busy1 = busy_cpu_seconds()
    other = None
    if busy0 is not None and busy1 is not None:
        other = round(max(0.0, (busy1 - busy0) - cpu) / (wall * (os.cpu_count() or 1)) * 100, 1)
    return {
        "train_cpu_s": round(cpu, 1),
        "train_wall_s": round(wall, 1),
        "other_cpu_pct": other,
        "random_vgg_warning": any("random" in str(w.message).lower() for w in caught),
    }


def run_arm(
    arm: str,
    args: argparse.Namespace,
    work: Path,
    real: torch.Tensor,
    judge: Judge,
    timing: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """Train (unless ``timing`` from an earlier training of the same run is given) and score."""
    cfg = arm_config(arm, args)
    out = work / arm
    if timing is None:
        timing = train_arm(arm, args, out)

    model: Any = load(out)
    model.eval()
    with torch.no_grad():
        recon = torch.cat([model.reconstruct(b * 2 - 1) for b in real.split(250)])
    recon = ((recon + 1) / 2).clamp(0, 1)
    samples = model.sample(args.n_samples, seed=SAMPLE_SEED).clamp(0, 1)

    result: dict[str, Any] = {
        "config": cfg,
        **{k: timing[k] for k in TIMING_KEYS},
        "recon_psnr_db": round(psnr(recon, real, reduction="mean").item(), 3),
        "recon": judge.compare(recon),
        "samples": judge.compare(samples),
    }
    return result, recon, samples


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def picture(
    real: torch.Tensor,
    rows: list[tuple[str, torch.Tensor, torch.Tensor]],
    path: Path,
    *,
    columns: int = 6,
    scale: int = 3,
) -> None:
    """Rows: real test images, then per arm its reconstructions | random samples."""
    cell = IMAGE_SIZE * scale
    pad, label_w, gap, head = 2, 170, 16, 24
    width = label_w + 2 * columns * (cell + pad) + gap
    height = head + (len(rows) + 1) * (cell + pad)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    x_recon, x_samp = label_w, label_w + columns * (cell + pad) + gap
    draw.text((x_recon, 4), "reconstructions of the test images above", fill="black", font=font)
    draw.text((x_samp, 4), "random samples (z ~ N(0, I))", fill="black", font=font)

    def tile(img: torch.Tensor, x: int, y: int) -> None:
        a = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        im = Image.fromarray(np.ascontiguousarray(a)).resize((cell, cell), Image.Resampling.NEAREST)
        canvas.paste(im, (x, y))

    y = head
    draw.text((6, y + cell // 2 - 8), "real (shapes:test)", fill="black", font=font)
    for j in range(columns):
        tile(real[j], x_recon + j * (cell + pad), y)
    for name, recon, samples in rows:
        y += cell + pad
        draw.text((6, y + cell // 2 - 8), name, fill="black", font=font)
        for j in range(columns):
            tile(recon[j], x_recon + j * (cell + pad), y)
            tile(samples[j], x_samp + j * (cell + pad), y)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--perceptual-weight", type=float, default=1.0)
    p.add_argument("--adv-weight", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-samples", type=int, default=500)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--work", type=Path, default=None, help="run folders (default: a temp dir)")
    p.add_argument("--json-out", type=Path, default=Path("benchmarks/results/vae_losses.json"))
    p.add_argument("--figure", type=Path, default=Path("docs/images/vae-losses.png"))
    p.add_argument(
        "--rescore",
        action="store_true",
        help="score the trained runs in --work again without training (after a change to the "
        "scoring code); training times are taken from the existing --json-out",
    )
    p.add_argument(
        "--append-as",
        default=None,
        help="keep --json-out's document and add this run to it under extra_runs.NAME",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"unknown arm(s) {unknown}; known: {', '.join(ARMS)}")

    start = time.perf_counter()
    real = open_dataset(TEST, image_size=IMAGE_SIZE, channels=CHANNELS).images.float() / 255
    judge = Judge(real)
    train_real = open_dataset(DATA, image_size=IMAGE_SIZE, channels=CHANNELS).images
    g = torch.Generator().manual_seed(0)
    noisy = (real + 0.05 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    references = {
        "train_500_vs_test": judge.compare(train_real[: real.shape[0]].float() / 255),
        "test_blurred_sigma1_vs_test": judge.compare(gaussian_blur(real, 1.0)),
        "test_noise_0.05_vs_test": judge.compare(noisy),
        "test_sharpness_mean": float(f"{judge.real_sharp.mean().item():.4g}"),
    }
    print(json.dumps({"references": references}), file=sys.stderr, flush=True)

    previous: dict[str, Any] = {}
    if args.rescore:
        if args.work is None:
            p.error("--rescore needs --work (the folder of the trained runs)")
        previous = json.loads(args.json_out.read_text(encoding="utf-8"))
        if args.append_as:
            previous = previous["extra_runs"][args.append_as]
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="vae_losses_")
        work = Path(tmp.name)
    else:
        work = args.work
    results: dict[str, Any] = {}
    rows: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    for arm in arms:
        timing = None
        if args.rescore:
            timing = {k: previous["arms"][arm][k] for k in TIMING_KEYS}
            if previous["arms"][arm]["config"] != arm_config(arm, args):
                p.error(f"--rescore: {arm} was trained with another config")
        res, recon, samples = run_arm(arm, args, work, real, judge, timing)
        results[arm] = res
        rows.append((arm, recon, samples))
        print(json.dumps({arm: res}), file=sys.stderr, flush=True)
    if tmp is not None:
        tmp.cleanup()
    picture(real, rows, args.figure)

    doc = {
        "benchmark": "vae_losses",
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "torch_threads": args.threads,
        },
        "command": previous["command"]
        if args.rescore
        else "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vae_losses.py " + " ".join(sys.argv[1:]),
        "rescore_command": "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vae_losses.py "
        + " ".join(sys.argv[1:])
        if args.rescore
        else None,
        "data": {"train": DATA, "test": TEST, "n_test": int(real.shape[0])},
        "budget": {
            "steps": args.steps,
            "batch_size": args.batch,
            "lr": args.lr,
            "beta": args.beta,
            "perceptual_weight": args.perceptual_weight,
            "adv_weight": args.adv_weight,
            "model": MODEL,
        },
        "vgg_weights": vgg_weights(),
        "extractor": EXTRACTOR,
        "note": "domain FID/KID: not comparable with published FIDs",
        "n_samples": args.n_samples,
        "references": references,
        "arms": results,
        "total_wall_s": previous["total_wall_s"]
        if args.rescore
        else round(time.perf_counter() - start, 1),
        "rescored": bool(args.rescore),
        "figure": str(args.figure),
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.append_as:
        whole = json.loads(args.json_out.read_text(encoding="utf-8"))
        whole.setdefault("extra_runs", {})[args.append_as] = doc
        text = json.dumps(whole, indent=2)
    elif args.rescore and "extra_runs" in previous:
        doc["extra_runs"] = previous["extra_runs"]  # rescored separately, with --append-as
        text = json.dumps(doc, indent=2)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
