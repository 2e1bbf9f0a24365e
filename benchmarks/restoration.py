"""Restoration quality on the standard test sets, with classical baselines measured in the same run.

Protocols (docs/benchmarks.md, "Restoration"):

- sr: HR cropped to a multiple of the scale; LR = PIL bicubic reduction of the uint8 HR; the
  model's output quantised to uint8; PSNR/SSIM on BT.601 Y with a border of ``scale`` pixels
  cropped. Baseline: PIL bicubic enlargement of the LR.
- denoise: HR + Gaussian noise of sigma (8-bit units, seed 0 per image index), clipped and
  rounded to uint8; RGB PSNR/SSIM. Baselines: the noisy input, scikit-image's wavelet
  BayesShrink, and OpenCV's fastNlMeansDenoisingColored (h = hColor = 0.6 sigma, template 7,
  search 21) when cv2 is importable.
- jpeg: PIL JPEG at quality q with 4:2:0 subsampling; RGB PSNR/SSIM against the JPEG input.
- inpaint: the masks of benchmarks/masks.py (box 25%, free-form 15-25%); PSNR over the hole's
  pixels and SSIM over the hole's bounding box. Baselines: OpenCV's Telea inpainting (radius 5)
  when cv2 is importable, and the two fills an inpainting model can start from, alone:
  pixelforge's push-pull ``smooth_fill`` and ``harmonic_fill``.
- uncrop: the same scores for the border outside a kept window (``masks.border_mask``): a centred
  window of 75% of each side, and the left half kept with the right half to fill.
- colorize: the BT.601 grey of each photo (PIL "L", replicated to RGB) in; RGB PSNR/SSIM against
  the original, and Hasler and Suesstrunk's colourfulness of the output, the grey input (0) and
  the original.

    python benchmarks/restoration.py sr --model sr-x4 --sets CSet5 CSet14
    python benchmarks/restoration.py denoise --model denoise --sigmas 15 25 50
    python benchmarks/restoration.py jpeg --model jpeg --quality 10
    python benchmarks/restoration.py inpaint --model inpaint
    python benchmarks/restoration.py uncrop --model inpaint
    python benchmarks/restoration.py colorize --model colorize
    python benchmarks/restoration.py speed --model sr-x4 --size 512
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from pixelforge.metrics.image_quality import psnr, ssim
from pixelforge.restoration.masks import adaptive_fill, border_mask, harmonic_fill, smooth_fill
from pixelforge.tasks.image2image import apply_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x C -> float C x H x W in [0, 1]."""
    return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float C x H x W in [0, 1] -> uint8 H x W x C (rounded, as a saved PNG)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def scores(
    out: np.ndarray, ref: np.ndarray, *, y: bool = False, border: int = 0
) -> tuple[float, float]:
    a, b = to_tensor(out)[None].double(), to_tensor(ref)[None].double()
    p = float(psnr(a, b, y_channel=y, crop_border=border)[0])
    s = float(ssim(a, b, y_channel=y, crop_border=border)[0])
    return p, s


ENSEMBLE = {"copies": 1}  # --ensemble: flipped and transposed copies averaged per image


def run_model(model: Any, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    m = None if mask is None else torch.from_numpy(mask.astype(np.float32))[None]
    return to_uint8(apply_model(model, to_tensor(image), mask=m, ensemble=ENSEMBLE["copies"]))


def mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


# ------------------------------------------------------------------------------- tasks
def _lpips() -> Any:
    """LPIPS (VGG, v0.1) when its real weights are on this machine, else None."""
    from pixelforge.features.lpips import LPIPSWeightsMissing, lpips_vgg

    try:
        return lpips_vgg()
    except LPIPSWeightsMissing:
        return None


def texture(out: np.ndarray, ref: np.ndarray, lpips: Any) -> dict[str, float]:
    """How close the output's fine detail is to the original's: the noise-robust sharpness log
    ratio (negative = blurrier than the original) and LPIPS when available."""
    from pixelforge.metrics.sharpness import sharpness, sharpness_log_ratio

    a, b = to_tensor(out)[None].double(), to_tensor(ref)[None].double()
    row = {"sharpness_log_ratio": sharpness_log_ratio(sharpness(a), sharpness(b))}
    if lpips is not None:
        with torch.no_grad():
            row["lpips"] = float(lpips(a.float(), b.float()).mean())
    return row


def real_world_lr(hr: np.ndarray, scale: int, seed: int) -> np.ndarray:
    """The "photos from the wild" low-resolution input: blur, random resize, noise, JPEG
    (pixelforge.restoration.degrade.real_world), seeded by the image's index."""
    from pixelforge.restoration.degrade import real_world

    x = to_tensor(hr)[None]
    return to_uint8(real_world(x, scale, torch.Generator().manual_seed(seed))[0])


def bench_sr(model: Any, sets: list[str], scale: int, degradation: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    lpips = _lpips()
    for name in sets:
        rows = []
        for i, path in enumerate(sorted(list_images(DATA / name))):
            hr = read_image(path)
            h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
            hr = hr[:h, :w]
            if degradation == "real":
                lr = real_world_lr(hr, scale, i)
            else:
                lr = np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))
            bic = np.asarray(Image.fromarray(lr).resize((w, h), Image.BICUBIC))
            row: dict[str, Any] = {"image": path.stem}
            row["bicubic_psnr"], row["bicubic_ssim"] = scores(bic, hr, y=True, border=scale)
            row |= {f"bicubic_{k}": v for k, v in texture(bic, hr, lpips).items()}
            if model is not None:
                sr = run_model(model, lr)
                row["model_psnr"], row["model_ssim"] = scores(sr, hr, y=True, border=scale)
                row |= {f"model_{k}": v for k, v in texture(sr, hr, lpips).items()}
            rows.append(row)
        summary = {k: mean(rows, k) for k in rows[0] if k != "image"}
        result[name] = {"mean": summary, "images": rows}
    return result


def add_noise(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _wavelet(noisy: np.ndarray) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    out = denoise_wavelet(
        noisy / 255.0, method="BayesShrink", mode="soft", rescale_sigma=True, channel_axis=-1,
        convert2ycbcr=True,
    )  # fmt: skip
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def bench_denoise(model: Any, folder: Path, sigmas: list[float], limit: int) -> dict[str, Any]:
    cv2 = _cv2()
    files = sorted(list_images(folder))[:limit]
    result: dict[str, Any] = {}
    for sigma in sigmas:
        rows = []
        for i, path in enumerate(files):
            clean = read_image(path)
            noisy = add_noise(clean, sigma, i)
            row: dict[str, Any] = {"image": path.stem}
            row["noisy_psnr"], _ = scores(noisy, clean)
            row["wavelet_psnr"], _ = scores(_wavelet(noisy), clean)
            if cv2 is not None:
                h = 0.6 * sigma
                bgr = cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR)
                nlm = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)
                row["opencv_nlm_psnr"], _ = scores(cv2.cvtColor(nlm, cv2.COLOR_BGR2RGB), clean)
            if model is not None:
                row["model_psnr"], row["model_ssim"] = scores(run_model(model, noisy), clean)
            rows.append(row)
        result[f"sigma{sigma:g}"] = {k: mean(rows, k) for k in rows[0] if k != "image"}
    return result


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=2)
    with Image.open(buf) as back:
        return np.asarray(back.convert("RGB"))


def bench_jpeg(model: Any, folder: Path, qualities: list[int], limit: int) -> dict[str, Any]:
    files = sorted(list_images(folder))[:limit]
    result: dict[str, Any] = {}
    for q in qualities:
        rows = []
        for path in files:
            clean = read_image(path)
            jpg = jpeg_roundtrip(clean, q)
            row: dict[str, Any] = {"image": path.stem}
            row["jpeg_psnr"], row["jpeg_ssim"] = scores(jpg, clean)
            if model is not None:
                row["model_psnr"], row["model_ssim"] = scores(run_model(model, jpg), clean)
            rows.append(row)
        result[f"q{q}"] = {k: mean(rows, k) for k in rows[0] if k != "image"}
    return result


def hole_psnr(out: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the hole's pixels (``mask > 0``) of 8-bit ``out`` against ``ref``."""
    diff = (out.astype(np.float64) - ref.astype(np.float64))[mask > 0] / 255.0
    return float(10 * np.log10(1.0 / np.mean(diff**2)))


def read_mask(masks: Path | str, kind: str, stem: str) -> np.ndarray:
    """The benchmark's ``kind`` mask ("box" or "free", benchmarks/masks.py) for the image named
    ``stem``, as uint8: 1 in the hole, 0 where the pixel is known."""
    return (read_image(Path(masks) / kind / f"{stem}.png", mode="L")[..., 0] > 127).astype(np.uint8)


def hole_scores(out: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """PSNR over the hole's pixels; SSIM over the hole's bounding box."""
    p = hole_psnr(out, ref, mask)
    ys, xs = np.nonzero(mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    _, s = scores(out[box], ref[box])
    return p, s


def hole_row(model: Any, clean: np.ndarray, mask: np.ndarray, cv2: Any) -> dict[str, Any]:
    """One image's hole scores: Telea (when cv2 is importable), each fill alone, the model."""
    row: dict[str, Any] = {"coverage": float(mask.mean())}
    if cv2 is not None:
        telea = cv2.inpaint(clean * (1 - mask[..., None]), mask, 5, cv2.INPAINT_TELEA)
        row["telea_psnr"], row["telea_ssim"] = hole_scores(telea, clean, mask)
    x, m = to_tensor(clean)[None], torch.from_numpy(mask).float()[None, None]
    fills = (("smooth", smooth_fill), ("harmonic", harmonic_fill), ("adaptive", adaptive_fill))
    for name, fill in fills:
        out = to_uint8(fill(x * (1 - m), m)[0])
        row[f"{name}_psnr"], row[f"{name}_ssim"] = hole_scores(out, clean, mask)
    if model is not None:
        out = run_model(model, clean * (1 - mask[..., None]), mask)
        row["model_psnr"], row["model_ssim"] = hole_scores(out, clean, mask)
    return row


def bench_inpaint(model: Any, folder: Path, masks: Path, limit: int) -> dict[str, Any]:
    cv2 = _cv2()
    files = sorted(list_images(folder))[:limit]
    result: dict[str, Any] = {}
    for kind in ("box", "free"):
        rows = []
        for path in files:
            clean = read_image(path)
            mask = read_mask(masks, kind, path.stem)
            rows.append(hole_row(model, clean, mask, cv2))
        result[kind] = {k: mean(rows, k) for k in rows[0]}
    return result


# uncrop: the border to fill around a kept window (masks.border_mask): a centred window of 75%
# of each side (44% of the area filled), and the left half kept, the right half filled (Palette)
UNCROP_CASES = (("all", 0.75), ("right", 0.5))


def bench_uncrop(model: Any, folder: Path, limit: int) -> dict[str, Any]:
    cv2 = _cv2()
    files = sorted(list_images(folder))[:limit]
    result: dict[str, Any] = {}
    for side, keep in UNCROP_CASES:
        rows = []
        for path in files:
            clean = read_image(path)
            mask = border_mask(*clean.shape[:2], keep=keep, side=side)
            rows.append(hole_row(model, clean, mask, cv2))
        result[f"{side}_{keep}"] = {k: mean(rows, k) for k in rows[0]}
    return result


def colourfulness(image: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003) colourfulness: std and mean of the rg and yb opponent
    channels, sigma_rgyb + 0.3 mu_rgyb (0 for a grey image; about 30-60 for everyday photos)."""
    r, g, b = (image[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    sigma = float(np.hypot(rg.std(), yb.std()))
    mu = float(np.hypot(rg.mean(), yb.mean()))
    return sigma + 0.3 * mu


def bench_colorize(model: Any, folder: Path, limit: int) -> dict[str, Any]:
    rows = []
    for path in sorted(list_images(folder))[:limit]:
        clean = read_image(path)
        grey = np.repeat(np.asarray(Image.fromarray(clean).convert("L"))[..., None], 3, axis=2)
        row: dict[str, Any] = {"image": path.stem}
        row["grey_psnr"], row["grey_ssim"] = scores(grey, clean)
        row["truth_colourfulness"] = colourfulness(clean)
        if model is not None:
            out = run_model(model, grey)
            row["model_psnr"], row["model_ssim"] = scores(out, clean)
            row["model_colourfulness"] = colourfulness(out)
        rows.append(row)
    return {k: mean(rows, k) for k in rows[0] if k != "image"}


def bench_speed(model: Any, size: int, rounds: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, size, size, generator=g)
    apply_model(model, image[:, :64, :64])  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        out = apply_model(model, image)
        times.append(time.perf_counter() - t)
    return {
        "input": [size, size],
        "output": list(out.shape[-2:]),
        "seconds_median": float(np.median(times)),
        "seconds_all": times,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "task", choices=["sr", "denoise", "jpeg", "inpaint", "uncrop", "colorize", "speed"]
    )
    parser.add_argument("--model", default=None, help="model dir or shipped name; none: baselines")
    parser.add_argument("--sets", nargs="+", default=["CSet5", "CSet14"])
    parser.add_argument("--scale", type=int, default=None)
    parser.add_argument(
        "--degradation",
        choices=["bicubic", "real"],
        default="bicubic",
        help="sr: LR by PIL bicubic (the standard protocol) or by the real-world pipeline",
    )
    parser.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50])
    parser.add_argument("--quality", nargs="+", type=int, default=[10])
    parser.add_argument("--folder", type=Path, default=DATA / "CBSD68")
    parser.add_argument("--masks", type=Path, default=Path("benchmarks/.cache/masks/CBSD68"))
    parser.add_argument("--limit", type=int, default=68, help="first N images of the folder")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--ensemble", type=int, default=1, help="average 1, 2, 4 or 8 flipped/transposed copies"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = hub.load(args.model) if args.model else None
    ENSEMBLE["copies"] = args.ensemble
    t0 = time.perf_counter()
    if args.task == "sr":
        scale = args.scale or (model.scale if model is not None else 4)
        result = bench_sr(model, args.sets, scale, args.degradation)
    elif args.task == "denoise":
        result = bench_denoise(model, args.folder, args.sigmas, args.limit)
    elif args.task == "jpeg":
        result = bench_jpeg(model, args.folder, args.quality, args.limit)
    elif args.task == "colorize":
        result = bench_colorize(model, args.folder, args.limit)
    elif args.task == "inpaint":
        result = bench_inpaint(model, args.folder, args.masks, args.limit)
    elif args.task == "uncrop":
        result = bench_uncrop(model, args.folder, args.limit)
    else:
        if model is None:
            parser.error("speed needs --model")
        result = bench_speed(model, args.size, args.rounds)
    doc = {
        "task": args.task,
        "model": args.model,
        "threads": torch.get_num_threads(),
        "ensemble": args.ensemble,
        "seconds": round(time.perf_counter() - t0, 1),
        "result": result,
    }
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
