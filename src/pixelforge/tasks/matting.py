"""Background removal with a matting model: the work behind ``pixelforge remove-bg``,
``pixelforge composite``, ``pixelforge eval matting`` and :func:`pixelforge.remove_bg`.

A matte file (``composite --alpha``, the B/ side of evaluation and training pairs) is read by
one rule (:func:`pixelforge.data.transforms.matte_of`): an image whose alpha channel is in use
gives that channel (a cutout, or a mask painted on a transparent layer); otherwise the image
must be grey, white = object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelforge.data.transforms import matte_of
from pixelforge.errors import ConfigError, DataError, PixelforgeError
from pixelforge.io.images import image_array, read_image
from pixelforge.metrics.result import MetricResult

DEFAULT_MODEL = "matting"


def load_matting(model: Any = None, device: Any = "cpu") -> Any:
    """The matting model ``model`` names (a loaded model, a model dir, run dir or shipped
    name; None: the shipped ``matting``), on ``device``."""
    from pixelforge.hub import load, load_shipped, shipped_models

    if model is not None and not isinstance(model, str | Path):
        found, name = model, "the model"
    else:
        if model is None and DEFAULT_MODEL not in shipped_models():
            raise PixelforgeError(
                f"this pixelforge ships no '{DEFAULT_MODEL}' model yet: train one with "
                "`pixelforge train matting --data composites --out runs/matting` and pass "
                "--model runs/matting."
            )
        name = str(model or DEFAULT_MODEL)
        found = load(model, device=device) if model else load_shipped(DEFAULT_MODEL, device=device)
    if getattr(found, "family", None) != "matting":
        raise ConfigError(
            f"{name} is a {getattr(found, 'family', '?')} model, not a matting model; "
            "give a model trained with `pixelforge train matting`."
        )
    return found


def predict_matte(model: Any, rgb: np.ndarray) -> np.ndarray:
    """The model's alpha (H x W float in [0, 1]) for an H x W x 3 uint8 image."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    alpha: torch.Tensor = model.predict_alpha(x)
    return alpha.numpy()


def cutout(model: Any, rgba: np.ndarray) -> np.ndarray:
    """An H x W x 4 uint8 image (straight alpha) -> its cutout, H x W x 4 uint8: the same
    colours, alpha = the model's matte times the image's own alpha, so pixels that were
    already transparent stay so. The model sees the image over white, as the reader flattens
    transparency."""
    flat = image_array(rgba, mode="RGB")
    alpha = predict_matte(model, flat) * (rgba[:, :, 3] / 255.0)
    return np.dstack([rgba[:, :, :3], np.rint(alpha * 255).astype(np.uint8)])


def read_matte(path: Path) -> np.ndarray:
    """A matte file as H x W float in [0, 1] (:func:`matte_of`)."""
    return matte_of(read_image(path, mode="RGBA"), str(path))


def evaluate_pairs(model: Any, folder: Path, *, name: str) -> list[MetricResult]:
    """IoU, SAD and MSE of ``model``'s mattes on the pairs of ``folder`` (``A/`` images, ``B/``
    true mattes, paired by file name as ``pixelforge eval psnr`` pairs them), each image at
    its own size and through the model's own inference path, as remove-bg runs it. Means over
    images, with their standard deviation."""
    from pixelforge.metrics.matting import matting_metrics
    from pixelforge.tasks.evaluate import _image_pairs, map_shared

    root = Path(folder)
    if not (root / "A").is_dir() or not (root / "B").is_dir():
        raise DataError(
            f"{root} needs sub-folders A/ (images) and B/ (their true alpha mattes, same file "
            "names), as `pixelforge train matting --data paired:PATH` reads them."
        )

    def score(pair: tuple[Path, Path]) -> dict[str, float]:
        image_path, matte_path = pair
        rgb = read_image(image_path, mode="RGB")
        true = read_matte(matte_path)
        if true.shape != rgb.shape[:2]:
            raise DataError(
                f"{matte_path} is {true.shape[1]}x{true.shape[0]} but {image_path} is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; a matte has its image's size."
            )
        return matting_metrics(predict_matte(model, rgb), true)

    # under torchrun each process scores a share of the pairs
    rows = map_shared(score, _image_pairs(root / "A", root / "B"))
    protocol = {
        "model": name,
        "model_sha256": getattr(model, "model_sha256", None),
        "data": str(root),
        "iou_threshold": 0.5,
        "sad": "sum of |alpha error| / 1000 at each image's own size",
    }
    out = []
    for key in ("iou", "sad", "mse"):
        values = np.array([r[key] for r in rows])
        std = float(values.std()) if len(values) > 1 else None
        out.append(MetricResult(key, float(values.mean()), std, len(rows), len(rows), protocol))
    return out
