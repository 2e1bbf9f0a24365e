"""The before/after pictures of the README's image-to-image section, from the shipped models.

Each row is one task on a held-out test photo (CSet5, CSet14 or CBSD68, never trained on):
input | pixelforge's output | the original. Rows whose model is not shipped are left out.

    python benchmarks/restoration_figures.py --out docs/images/restoration.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from pixelforge import hub
from pixelforge.io.images import read_image, write_png
from pixelforge.restoration.masks import border_mask
from pixelforge.tasks.image2image import apply_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIDE = 160  # each panel's side in the figure


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255


def array(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def crop(a: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    return a[top : top + side, left : left + side]


def panel(a: np.ndarray, label: str) -> Image.Image:
    im = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).convert("RGB")
    im = im.resize((SIDE, SIDE), Image.NEAREST if im.width < SIDE else Image.LANCZOS)
    ImageDraw.Draw(im).text((4, SIDE - 14), label, fill=(255, 255, 0))
    return im


def rows(models: dict[str, str]) -> list[tuple[str, list[tuple[np.ndarray, str]]]]:
    out = []
    rng = np.random.default_rng(0)
    shipped = hub.shipped_models()
    if models["sr"] in shipped:
        hr = crop(read_image(DATA / "CSet14" / "zebra.png"), 100, 200, 128)
        lr = np.asarray(Image.fromarray(hr).resize((32, 32), Image.BICUBIC))
        bic = np.asarray(Image.fromarray(lr).resize((128, 128), Image.BICUBIC))
        sr = array(apply_model(hub.load(models["sr"]), tensor(lr)))
        out.append(("upscale x4", [(bic, "bicubic"), (sr, models["sr"]), (hr, "original")]))
    photo = crop(read_image(DATA / "CBSD68" / "119082.png"), 60, 150, 160)
    if models["denoise"] in shipped:
        noisy = np.clip(np.round(photo + rng.normal(0, 25, photo.shape)), 0, 255).astype(np.uint8)
        den = array(apply_model(hub.load(models["denoise"]), tensor(noisy)))
        out.append(("denoise", [(noisy, "sigma 25"), (den, "denoised"), (photo, "original")]))
    if models["jpeg"] in shipped:
        import io

        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format="JPEG", quality=10)
        jpg = np.asarray(Image.open(buf).convert("RGB"))
        fixed = array(apply_model(hub.load(models["jpeg"]), tensor(jpg)))
        out.append(("restore-jpeg", [(jpg, "JPEG q10"), (fixed, "restored"), (photo, "original")]))
    if models["colorize"] in shipped:
        grey = np.repeat(np.asarray(Image.fromarray(photo).convert("L"))[..., None], 3, axis=2)
        col = array(apply_model(hub.load(models["colorize"]), tensor(grey)))
        out.append(("colorize", [(grey, "grey"), (col, "colorized"), (photo, "original")]))
    if models["inpaint"] in shipped:
        mask = np.zeros(photo.shape[:2], np.float32)
        mask[50:110, 50:110] = 1
        holed = (photo * (1 - mask[..., None])).astype(np.uint8)
        filled = array(
            apply_model(
                hub.load(models["inpaint"]), tensor(photo), mask=torch.from_numpy(mask)[None]
            )
        )
        out.append(("inpaint", [(holed, "hole"), (filled, "filled"), (photo, "original")]))
        # uncrop: the right 40% is new canvas (grey), as `pixelforge uncrop --side right` makes it
        border = border_mask(*photo.shape[:2], keep=0.6, side="right").astype(np.float32)
        canvas = (photo * (1 - border[..., None]) + 128 * border[..., None]).astype(np.uint8)
        wider = array(
            apply_model(
                hub.load(models["inpaint"]), tensor(canvas), mask=torch.from_numpy(border)[None]
            )
        )
        out.append(("uncrop", [(canvas, "kept"), (wider, "extended"), (photo, "original")]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/restoration.png"))
    args = parser.parse_args()
    models = {k: k for k in ("denoise", "jpeg", "colorize", "inpaint")} | {"sr": "sr-x4"}
    table = rows(models)
    pad, label_w = 4, 96
    width = label_w + 3 * (SIDE + pad)
    figure = Image.new("RGB", (width, len(table) * (SIDE + pad) + pad), "white")
    draw = ImageDraw.Draw(figure)
    for r, (name, panels) in enumerate(table):
        y = pad + r * (SIDE + pad)
        draw.text((4, y + SIDE // 2 - 6), name, fill=(0, 0, 0))
        for c, (a, label) in enumerate(panels):
            figure.paste(panel(a, label), (label_w + c * (SIDE + pad), y))
    write_png(args.out, np.asarray(figure), {"script": "benchmarks/restoration_figures.py"})
    print(f"wrote {args.out} ({len(table)} rows)")


if __name__ == "__main__":
    main()
