"""`restore-jpeg` on photos whose EXIF orientation turns them: CBSD68 at a JPEG quality.

Each CBSD68 photo is saved as a JPEG (PIL, 4:2:0) with an EXIF orientation tag, as phones save
photos held sideways or upside down, and read back through pixelforge's reader, which turns it
as the tag says. The shipped ``jpeg`` model then runs two ways: on the turned pixels, as before
it took the orientation into account (its 8x8 and 16x16 blocks start at the corner of the pixels
as stored, which the turn moves to another corner, off the model's grid for sides that are not
multiples of 16, as CBSD68's 481 and 321 are not), and as ``pixelforge restore-jpeg`` runs it
now (``apply_model(..., orientation=...)``: on the pixels as stored, the output turned back).
RGB PSNR against the turned original.

    python benchmarks/jpeg_orientation.py --threads 2 --out benchmarks/results/jpeg_orientation.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelforge import hub
from pixelforge.io.atomic import atomic_write_text
from pixelforge.io.images import exif_orientation, list_images, read_image
from pixelforge.tasks.image2image import EXIF_DIHEDRAL, apply_model, dihedral
from restoration import DATA, scores, to_tensor, to_uint8

NAMES = {1: "as stored", 3: "turned 180 degrees", 6: "turned 90 clockwise", 8: "turned 90 counter"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DATA / "CBSD68")
    parser.add_argument("--quality", type=int, default=10)
    parser.add_argument("--orientations", nargs="+", type=int, default=[1, 3, 6, 8])
    parser.add_argument("--model", default="jpeg")
    parser.add_argument("--limit", type=int, default=68)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = hub.load(args.model)
    files = sorted(list_images(args.folder))[: args.limit]
    t0 = time.perf_counter()
    result: dict[str, object] = {"quality": args.quality, "images": len(files)}
    with tempfile.TemporaryDirectory() as tmp:
        for orientation in args.orientations:
            rows = []
            for path in files:
                clean = read_image(path)
                exif = Image.Exif()
                exif[0x0112] = orientation  # EXIF Orientation
                jpg = Path(tmp) / f"{path.stem}.jpg"
                Image.fromarray(clean).save(jpg, quality=args.quality, subsampling=2, exif=exif)
                shown = read_image(jpg)  # turned by the reader
                assert exif_orientation(jpg) == orientation
                k = EXIF_DIHEDRAL[orientation]
                truth = np.ascontiguousarray(
                    dihedral(torch.from_numpy(clean).permute(2, 0, 1), k).permute(1, 2, 0).numpy()
                )
                x = to_tensor(shown)
                before = to_uint8(apply_model(model, x))
                now = to_uint8(apply_model(model, x, orientation=orientation))
                rows.append(
                    {
                        "jpeg": scores(shown, truth)[0],
                        "turned_pixels": scores(before, truth)[0],
                        "stored_pixels": scores(now, truth)[0],
                    }
                )
            summary = {key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0]}
            summary["worse_turned"] = sum(r["turned_pixels"] < r["stored_pixels"] for r in rows)
            result[f"orientation_{orientation}"] = {"name": NAMES.get(orientation, ""), **summary}
            print(orientation, json.dumps(result[f"orientation_{orientation}"]), flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
