"""Fit the adaptive fill's priors (``masks.ADAPTIVE_PRIOR``, ``ADAPTIVE_PRIOR_PIXELS`` and
``ADAPTIVE_BORDER_PRIOR``) on CSun_Hays80, the training photos; CBSD68, the test set, is never read.

Each photo is resized to a long side of 481 pixels (CBSD68's size) and given two masks. Holes
(``--holes interior``, the default): a centred box of 25% of the area and free-form strokes
covering 15-25% (seeded by the photo's index, a seed apart from the benchmark's). Borders
(``--holes border``, uncropping): the outside of a centred window of 75% of each side, and the
right half. For each, every operator of ``masks.ADAPTIVE_WEIGHTS`` fills the hole and the hole
grown by the 8-pixel band, and the script keeps the least-squares statistics of the fills against
the true pixels, on the hole and on the band. Then:

- the prior is the pooled least-squares combination on the true hole pixels (interior: of the
  boxes; border: of both borders), each photo weighted by 1 / its isotropic fill's squared error
  (so each counts alike, as a mean PSNR does);
- its strength, in pixels of band evidence (0: plain least squares), is the one of the grid with
  the best mean hole PSNR over boxes and strokes under 5-fold cross-validation (the prior
  refitted without each fold).

PSNR here is in closed form from the statistics (no clamp, no rounding), per photo, averaged.

    python benchmarks/adaptive_prior.py --out benchmarks/results/adaptive_prior.json
    python benchmarks/adaptive_prior.py --holes border --out benchmarks/results/adaptive_prior_border.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import list_images, read_image
from pixelforge.restoration.masks import (
    ADAPTIVE_BORDER_PRIOR,
    ADAPTIVE_PRIOR,
    ADAPTIVE_PRIOR_PIXELS,
    ADAPTIVE_WEIGHTS,
    _grow,
    band_weights,
    border_mask,
    box_mask,
    diffusion_fill,
    free_form_mask,
)
from restoration import UNCROP_CASES  # benchmarks/restoration.py: the uncrop benchmark's borders

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEED = 7  # the training masks' seed (the benchmark's masks use their own)
GRID = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0)
Stats = tuple[np.ndarray, np.ndarray, float, int]  # A A^T, A y, y y, n


def statistics(image: np.ndarray, mask: np.ndarray, band: int = 8) -> dict[str, Stats]:
    """Least-squares statistics of every operator's fill against the truth: on the hole's pixels
    (the hole filled) and on the band's (the hole grown by ``band`` filled)."""
    x = torch.from_numpy(image.copy()).permute(2, 0, 1).float()[None] / 255.0
    hole = torch.from_numpy(mask.astype(np.float32))[None, None]
    truth = x[0].numpy()
    out: dict[str, Stats] = {}
    for name, region in (("hole", hole), ("band", _grow(hole, band))):
        pick = mask > 0 if name == "hole" else (region[0, 0].numpy() > 0) & (mask == 0)
        fills = [
            diffusion_fill(x * (1 - region), region, torch.tensor(op), iters=200, tol=1e-5)[0]
            .numpy()[:, pick]
            .reshape(-1)
            for op in ADAPTIVE_WEIGHTS
        ]
        a = np.stack(fills).astype(np.float64)
        y = truth[:, pick].reshape(-1).astype(np.float64)
        out[name] = (a @ a.T, a @ y, float(y @ y), y.size)
    return out


def hole_psnr(stats: dict[str, Stats], coef: np.ndarray) -> float:
    g, b, yy, n = stats["hole"]
    return float(10 * np.log10(1.0 / max((coef @ g @ coef - 2 * coef @ b + yy) / n, 1e-12)))


def fit(stats: Stats, prior: np.ndarray | None = None, pixels: float = 0.0) -> np.ndarray:
    """``adaptive_fill``'s weights (``masks.band_weights``) from one region's statistics."""
    g, b, _, n = stats
    t = torch.from_numpy
    return band_weights(t(g), t(b), n, None if prior is None else t(prior), pixels).numpy()


def pooled_prior(holes: list[dict[str, Stats]]) -> np.ndarray:
    g_sum: Any = 0.0
    b_sum: Any = 0.0
    for s in holes:
        g, b, yy, _ = s["hole"]
        weight = 1.0 / (g[0, 0] - 2 * b[0] + yy)  # 1 / (n x the isotropic fill's MSE)
        g_sum, b_sum = g_sum + weight * g, b_sum + weight * b
    return np.linalg.solve(g_sum, b_sum)


def masks_of(holes: str, height: int, width: int, index: int) -> dict[str, np.ndarray]:
    """The two training masks of one photo: borders as the uncrop benchmark cuts them, or holes."""
    if holes == "border":
        return {
            f"{side}_{keep}": border_mask(height, width, keep=keep, side=side)
            for side, keep in UNCROP_CASES
        }
    rng = np.random.default_rng([SEED, index])
    return {
        "box": box_mask(height, width, area=0.25),
        "free": free_form_mask(height, width, rng, coverage=(0.15, 0.25)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DATA / "CSun_Hays80")
    parser.add_argument("--holes", choices=["interior", "border"], default="interior")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # which masks the prior is fitted on, and the shipped constant it must reproduce
    pooled_on, shipped = (
        ([f"{side}_{keep}" for side, keep in UNCROP_CASES], ADAPTIVE_BORDER_PRIOR)
        if args.holes == "border"
        else (["box"], ADAPTIVE_PRIOR)
    )
    rows: list[dict[str, dict[str, Stats]]] = []
    for index, path in enumerate(sorted(list_images(args.folder))):
        photo = Image.fromarray(read_image(path))
        scale = 481 / max(photo.size)
        size = (round(photo.size[0] * scale), round(photo.size[1] * scale))
        image = np.asarray(photo.resize(size, Image.BICUBIC))
        masks = masks_of(args.holes, *image.shape[:2], index)
        rows.append({kind: statistics(image, mask) for kind, mask in masks.items()})
        print(path.stem, flush=True)
    kinds = list(rows[0])

    def prior_of(chosen: list[dict[str, dict[str, Stats]]]) -> np.ndarray:
        return pooled_prior([r[kind] for r in chosen for kind in pooled_on])

    folds = np.array_split(np.random.default_rng(0).permutation(len(rows)), 5)
    table = []
    for pixels in GRID:
        scores: dict[str, list[float]] = {kind: [] for kind in kinds}
        for fold in folds:
            held = set(fold.tolist())
            prior = prior_of([r for i, r in enumerate(rows) if i not in held])
            for i in held:
                for kind in scores:
                    coef = fit(rows[i][kind]["band"], prior, pixels)
                    scores[kind].append(hole_psnr(rows[i][kind], coef))
        entry: dict[str, float] = {"prior_pixels": pixels}
        entry.update({kind: float(np.mean(v)) for kind, v in scores.items()})
        entry["mean"] = float(np.mean([entry[kind] for kind in kinds]))
        table.append(entry)
        print(json.dumps(table[-1]), flush=True)
    best = max(table, key=lambda t: t["mean"])
    # references, in-sample: the previous rule (interior: the first four operators, plain least
    # squares on the band; border: the interior prior) and the oracles (each photo's weights
    # fitted on its true hole pixels); border also the harmonic fill (the isotropic one alone)
    references: dict[str, dict[str, float]] = {}
    six = len(ADAPTIVE_WEIGHTS)
    previous: tuple[str, int, str, np.ndarray | None, float] = (
        ("interior_prior", six, "band", np.array(ADAPTIVE_PRIOR), ADAPTIVE_PRIOR_PIXELS)
        if args.holes == "border"
        else ("band_4_operators", 4, "band", None, 0.0)
    )
    # and the shipped rule: in-sample on CSun_Hays80, held out on any other folder
    # (benchmarks/validation_photos.py)
    shipped_rule = ("shipped", six, "band", np.array(shipped), ADAPTIVE_PRIOR_PIXELS)
    rules = [previous, shipped_rule, ("oracle_4_operators", 4, "hole", None, 0.0)]
    rules.append(("oracle_6_operators", six, "hole", None, 0.0))
    for name, ops, source, pull, strength in rules:
        references[name] = {}
        for kind in kinds:
            values = []
            for r in rows:
                sub = {k: (g[:ops, :ops], b[:ops], yy, n) for k, (g, b, yy, n) in r[kind].items()}
                values.append(hole_psnr(sub, fit(sub[source], pull, strength)))
            references[name][kind] = float(np.mean(values))
    if args.holes == "border":
        isotropic = np.eye(six)[0]
        references["harmonic"] = {
            kind: float(np.mean([hole_psnr(r[kind], isotropic) for r in rows])) for kind in kinds
        }
    prior = prior_of(rows)
    result = {
        "folder": str(args.folder),
        "holes": args.holes,
        "images": len(rows),
        "operators": [list(op) for op in ADAPTIVE_WEIGHTS],
        "prior": [round(float(c), 4) for c in prior],
        "prior_pixels": best["prior_pixels"],
        "cross_validation": table,
        "references": references,
        # the fills are solved to a tolerance, so float32 rounding in the solver moves the
        # fitted prior by up to 1.5e-3 (weights up to 11.5; 1e-5 dB of cross-validated
        # score): 5e-3 tells the shipped constants from any other fit
        "matches_shipped": bool(
            np.allclose(prior, shipped, atol=5e-3) and best["prior_pixels"] == ADAPTIVE_PRIOR_PIXELS
        ),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
