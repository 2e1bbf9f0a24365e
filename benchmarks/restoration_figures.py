"""The before/after pictures of the README's image-to-image section, from the shipped models.

Each row is one task on a held-out test photo (CSet5, CSet14 or CBSD68, never trained on):
input | pixelforge's output | the original; `sr-x4` beside `sr-x4-gan`; deep image prior on the
denoising row's input; remove-bg on a held-out composite and on three photos of scikit-image.
Rows whose model is not shipped are left out.

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
    draw = ImageDraw.Draw(im)
    draw.text((5, SIDE - 13), label, fill=(0, 0, 0))  # a shadow, readable on light panels
    draw.text((4, SIDE - 14), label, fill=(255, 255, 0))
    return im


def rows(
    models: dict[str, str], dip_iterations: int
) -> list[tuple[str, list[tuple[np.ndarray, str]]]]:
    out = []
    rng = np.random.default_rng(0)
    shipped = hub.shipped_models()
    if models["sr"] in shipped:
        hr = crop(read_image(DATA / "CSet14" / "zebra.png"), 100, 200, 128)
        lr = np.asarray(Image.fromarray(hr).resize((32, 32), Image.BICUBIC))
        bic = np.asarray(Image.fromarray(lr).resize((128, 128), Image.BICUBIC))
        sr = array(apply_model(hub.load(models["sr"]), tensor(lr)))
        out.append(("upscale x4", [(bic, "bicubic"), (sr, models["sr"]), (hr, "original")]))
        if models["sr-gan"] in shipped:  # the same input: pixel loss alone is blurrier
            gan = array(apply_model(hub.load(models["sr-gan"]), tensor(lr)))
            panels = [(sr, f"{models['sr']} (L1)"), (gan, models["sr-gan"]), (hr, "original")]
            out.append(("upscale x4,\nGAN fine-tuned", panels))
    photo = crop(read_image(DATA / "CBSD68" / "119082.png"), 60, 150, 160)
    if models["denoise"] in shipped:
        noisy = np.clip(np.round(photo + rng.normal(0, 25, photo.shape)), 0, 255).astype(np.uint8)
        den = array(apply_model(hub.load(models["denoise"]), tensor(noisy)))
        out.append(("denoise", [(noisy, "sigma 25"), (den, "denoised"), (photo, "original")]))
        if dip_iterations:
            from pixelforge.restoration.dip import deep_image_prior

            dip = deep_image_prior(noisy, "denoise", iterations=dip_iterations, seed=0).to_uint8()
            name = f"dip, {dip_iterations} it."
            out.append(
                ("deep image\nprior", [(noisy, "sigma 25"), (dip, name), (photo, "original")])
            )
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
    if models["matting"] in shipped:
        out += matting_rows(models["matting"])
    return out


def checkerboard(rgba: np.ndarray, square: int = 8) -> np.ndarray:
    """An RGBA image over a grey and white checkerboard, as image editors show transparency."""
    yy, xx = np.mgrid[: rgba.shape[0], : rgba.shape[1]]
    board = np.where(((yy // square + xx // square) % 2)[..., None] == 0, 200.0, 255.0)
    a = rgba[..., 3:4] / 255.0
    return np.rint(rgba[..., :3] * a + board * (1 - a)).astype(np.uint8)


def matting_rows(name: str) -> list[tuple[str, list[tuple[np.ndarray, str]]]]:
    """remove-bg on the first held-out composite (its true cutout beside it), and on three
    photos of scikit-image, whatever it makes of them (its card: composite-trained, demo quality
    on real photos)."""
    from skimage import data

    from pixelforge.restoration.composites import make_composites
    from pixelforge.tasks.matting import cutout, load_matting

    model = load_matting(name)
    images, alphas = make_composites(1, SIDE, split="test", seed=0)
    image = images[0]
    opaque = np.full(image.shape[:2], 255, np.uint8)
    true = np.dstack([image, np.rint(alphas[0] * 255).astype(np.uint8)])
    cut = checkerboard(cutout(model, np.dstack([image, opaque])))
    rows = [
        (
            "remove-bg",
            [(image, "held-out composite"), (cut, "cutout"), (checkerboard(true), "true cutout")],
        )
    ]
    photos = []
    for photo in ("coffee", "chelsea", "astronaut"):
        rgb = getattr(data, photo)()
        side = min(rgb.shape[:2])
        top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
        square = np.asarray(Image.fromarray(crop(rgb, top, left, side)).resize((SIDE, SIDE)))
        photos.append((checkerboard(cutout(model, np.dstack([square, opaque]))), photo))
    rows.append(("remove-bg,\nreal photos", photos))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/restoration.png"))
    parser.add_argument(
        "--dip-iterations", type=int, default=2000, help="deep image prior's row (0: leave it out)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ("denoise", "jpeg", "colorize", "inpaint", "matting")
    models = {k: k for k in names} | {"sr": "sr-x4", "sr-gan": "sr-x4-gan"}
    table = rows(models, args.dip_iterations)
    pad, label_w = 4, 96
    width = label_w + 3 * (SIDE + pad)
    figure = Image.new("RGB", (width, len(table) * (SIDE + pad) + pad), "white")
    draw = ImageDraw.Draw(figure)
    for r, (name, panels) in enumerate(table):
        y = pad + r * (SIDE + pad)
        draw.multiline_text((4, y + SIDE // 2 - 6), name, fill=(0, 0, 0))
        for c, (a, label) in enumerate(panels):
            figure.paste(panel(a, label), (label_w + c * (SIDE + pad), y))
    write_png(args.out, np.asarray(figure), {"script": "benchmarks/restoration_figures.py"})
    print(f"wrote {args.out} ({len(table)} rows)")


if __name__ == "__main__":
    main()
