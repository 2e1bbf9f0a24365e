"""Gather a validation folder of 24 photos that are neither training (CSun_Hays80) nor test
(CBSD68, CSet5, CSet14) photos, all from packages: 18 of OpenCV's sample images (Debian's
``opencv-doc``: fruit, animals, people, streets, objects on tables, an aerial view), 4 of
scikit-image's (astronaut, chelsea, coffee, rocket) and scikit-learn's 2 (china, flower),
each resized (bicubic) to a long side of 481 pixels, CBSD68's size.

CSun_Hays80 is mostly landscapes, CBSD68 mostly objects, animals and people. A rule fitted on
the training photos can be scored here, closer to the test set's kind, without reading the test
set (``benchmarks/adaptive_prior.py --folder``, ``benchmarks/masks.py`` then
``benchmarks/restoration.py inpaint --folder``).

    apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb opencv-doc
    python benchmarks/validation_photos.py --opencv opencv-doc --out benchmarks/.cache/validation
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data
from sklearn.datasets import load_sample_images

from pixelforge.io.images import read_image

SAMPLES = "usr/share/doc/opencv-doc/examples/data"
OPENCV = [
    "aero1.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "ela_original.jpg",
    "fruits.jpg",
    "home.jpg",
    "leuvenA.jpg",
    "licenseplate_motion.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
]
SCIKIT_IMAGE = ("astronaut", "chelsea", "coffee", "rocket")
LONG_SIDE = 481


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--opencv", type=Path, required=True, help="opencv-doc extracted (dpkg-deb -x)"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    samples = args.opencv / SAMPLES
    if not samples.is_dir():
        parser.error(f"{samples} is not a folder: extract opencv-doc there with dpkg-deb -x")
    args.out.mkdir(parents=True, exist_ok=True)
    photos: dict[str, np.ndarray] = {}
    for name in OPENCV:
        photos[f"opencv_{Path(name).stem}"] = read_image(samples / name)
    for name in SCIKIT_IMAGE:
        photos[f"skimage_{name}"] = getattr(data, name)()[..., :3]
    for name, image in zip(("china", "flower"), load_sample_images().images, strict=True):
        photos[f"sklearn_{name}"] = image
    for name, image in photos.items():
        photo = Image.fromarray(image)
        scale = LONG_SIDE / max(photo.size)
        size = (round(photo.size[0] * scale), round(photo.size[1] * scale))
        photo.resize(size, Image.BICUBIC).save(args.out / f"{name}.png")
    print(f"{len(photos)} photos in {args.out}")


if __name__ == "__main__":
    main()
