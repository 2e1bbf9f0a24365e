"""User folders: ``folder:PATH``, ``paired:PATH`` and ``unpaired:PATH``.

``folder:PATH``    every image under PATH (recursively). With at least two sub-folders holding
                   images, each immediate sub-folder is a class (names sorted) and no image may
                   sit directly in PATH; otherwise the set is unlabelled.
``paired:PATH``    pix2pix layout, read from ``PATH/train`` when that folder exists, else PATH:
                   either sub-folders ``A/`` and ``B/`` whose files pair up by name (extension
                   ignored; ``A/train`` and ``B/train`` when both exist), or images holding A and
                   B side by side (about twice as wide as tall; the left half is A, the right half
                   B). A PATH with ``val/`` or ``test/`` but no ``train/`` is refused: name the
                   split to read (``paired:PATH/val``).
``unpaired:PATH``  CycleGAN layout: ``PATH/trainA`` and ``PATH/trainB`` (or ``PATH/A`` and
                   ``PATH/B``). The two sides may differ in length. For the test split, point at a
                   folder whose ``A``/``B`` (or ``trainA``/``trainB``) are the test images.

Every file is decoded once through :func:`pixelforge.io.images.read_image`. Unreadable files are
skipped and recorded (``ImageDataset.skipped``); when more than ``max_bad_fraction`` of them fail
the dataset stops with a :class:`DataError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from pixelforge.data.config import DataConfig
from pixelforge.data.dataset import CheckReport, DatasetInfo, ImageDataset, track
from pixelforge.data.transforms import (
    convert_channels,
    float_to_uint8,
    matte_of,
    prepare_image,
    random_crops,
    stack_images,
)
from pixelforge.errors import DataError, ImageReadError
from pixelforge.io.images import list_images, read_image

FOLDER_KINDS = ("folder", "paired", "unpaired")
T = TypeVar("T")
_SHOW = 5  # files named in an error message


def _names(paths: list[Path], root: Path | None = None) -> str:
    shown = [str(p.relative_to(root) if root else p) for p in paths[:_SHOW]]
    more = f" and {len(paths) - _SHOW} more" if len(paths) > _SHOW else ""
    return ", ".join(shown) + more


def resolve_folder(path: str, spec: str) -> Path:
    """``path`` as a folder that exists; :class:`DataError` otherwise."""
    if not path:
        raise DataError(f"'{spec}' names no folder: write it as {spec.rstrip(':')}:PATH.")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(
            f"no such folder: {p} (from '{spec}'). Check the path; a relative path is taken "
            f"from the current folder, {Path.cwd()}."
        )
    if not p.is_dir():
        raise DataError(f"{p} is a file, not a folder (from '{spec}'): give the folder holding it.")
    return p


def _images_in(folder: Path, spec: str) -> list[Path]:
    files = list_images(folder)
    if not files:
        raise DataError(
            f"no images found in {folder} (from '{spec}'). Put image files (png, jpg, ...) in it "
            "or in its sub-folders; hidden files and other extensions are ignored."
        )
    return files


# ----------------------------------------------------------------------------- layouts
def folder_layout(root: Path, spec: str) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """``(files, labels, class_names)`` of a ``folder:`` dataset (labels None when unlabelled)."""
    files = _images_in(root, spec)
    by_class: dict[str, list[Path]] = {}
    loose: list[Path] = []
    for f in files:
        rel = f.relative_to(root)
        if len(rel.parts) > 1:
            by_class.setdefault(rel.parts[0], []).append(f)
        else:
            loose.append(f)
    if len(by_class) < 2:
        return files, None, None
    if loose:
        raise DataError(
            f"{root} mixes images directly inside it ({_names(loose, root)}) with "
            f"{len(by_class)} class sub-folders ({_names([Path(c) for c in sorted(by_class)])}). "
            "For labelled data put every image in a sub-folder named after its class; for "
            "unlabelled data keep them all in one folder."
        )
    class_names = sorted(by_class)
    ordered = [f for name in class_names for f in by_class[name]]
    labels = [i for i, name in enumerate(class_names) for _ in by_class[name]]
    return ordered, labels, class_names


#: Split folders of the pix2pix datasets (facades/train, val, test); training reads train.
SPLITS = ("train", "val", "test")


def paired_dirs(root: Path, spec: str) -> tuple[Path, Path | None, Path | None]:
    """``(folder, A folder, B folder)`` of paired data, the A/B folders None for side-by-side
    images: ``root/train`` when it exists, else ``root``; its ``A/train`` and ``B/train`` when
    both exist (the layout the pix2pix authors' script combines into side-by-side images)."""
    splits = [name for name in SPLITS if (root / name).is_dir()]
    if splits and "train" not in splits:  # never train on the held-out images by accident
        raise DataError(
            f"{root} has {' and '.join(f'{name}/' for name in splits)} but no train/, the split "
            f"training reads; to use that split, name it: paired:{root / splits[0]}."
        )
    root = root / "train" if splits else root
    a_dir, b_dir = root / "A", root / "B"
    if a_dir.is_dir() != b_dir.is_dir():
        have, missing = ("A", "B") if a_dir.is_dir() else ("B", "A")
        raise DataError(
            f"{root} has a sub-folder {have}/ but no {missing}/: paired data needs both A/ and "
            "B/ with matching file names, or images holding A and B side by side."
        )
    if not a_dir.is_dir():
        return root, None, None
    if (a_dir / "train").is_dir() and (b_dir / "train").is_dir():
        a_dir, b_dir = a_dir / "train", b_dir / "train"
    return root, a_dir, b_dir


def paired_layout(root: Path, spec: str) -> tuple[list[Path], list[Path] | None]:
    """``(files_a, files_b)`` for A/B sub-folders, or ``(side_by_side_files, None)``."""
    root, a_dir, b_dir = paired_dirs(root, spec)
    if a_dir is None or b_dir is None:
        return _images_in(root, spec), None
    a_files, b_files = _images_in(a_dir, spec), _images_in(b_dir, spec)
    a_keys, b_keys = _keyed(a_files, a_dir), _keyed(b_files, b_dir)
    lonely_a = [a_keys[k] for k in sorted(a_keys.keys() - b_keys.keys())]
    lonely_b = [b_keys[k] for k in sorted(b_keys.keys() - a_keys.keys())]
    if lonely_a or lonely_b:
        parts = []
        if lonely_a:
            parts.append(f"{len(lonely_a)} in A/ have no partner in B/ ({_names(lonely_a, root)})")
        if lonely_b:
            parts.append(f"{len(lonely_b)} in B/ have no partner in A/ ({_names(lonely_b, root)})")
        raise DataError(
            f"paired data in {root}: images pair up by file name (extension ignored), but "
            f"{' and '.join(parts)}. Add the missing partners or remove the unpaired files."
        )
    keys = sorted(a_keys)
    return [a_keys[k] for k in keys], [b_keys[k] for k in keys]


def _keyed(files: list[Path], folder: Path) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    for f in files:
        key = f.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DataError(
                f"{keyed[key]} and {f} have the same name apart from the extension, so their "
                "partner is ambiguous: rename or remove one."
            )
        keyed[key] = f
    return keyed


def unpaired_layout(root: Path, spec: str) -> tuple[list[Path], list[Path]]:
    """``(files_a, files_b)`` from ``trainA/``+``trainB/`` (or ``A/``+``B/``)."""
    for a_name, b_name in (("trainA", "trainB"), ("A", "B")):
        if (root / a_name).is_dir() and (root / b_name).is_dir():
            return _images_in(root / a_name, spec), _images_in(root / b_name, spec)
    found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    raise DataError(
        f"unpaired data in {root} needs two sub-folders trainA/ and trainB/ (or A/ and B/), one "
        "per domain, as in the CycleGAN datasets; it has "
        + (", ".join(found[:_SHOW]) if found else "no sub-folders")
        + ". To train on other folders, name them trainA/ and trainB/."
    )


# ----------------------------------------------------------------------------- decoding
class _Native:
    """What the decoded originals looked like (they are not kept: only resized copies are)."""

    def __init__(self) -> None:
        self.grey = True
        self.sizes: set[tuple[int, int]] = set()

    def see(self, image: np.ndarray) -> None:
        self.sizes.add((int(image.shape[0]), int(image.shape[1])))
        if self.grey:
            self.grey = _is_grey(image)

    def update(self, info: DatasetInfo, size: int) -> DatasetInfo:
        native = next(iter(self.sizes)) if len(self.sizes) == 1 else None
        return replace(info, size=size, channels=1 if self.grey else 3, native_size=native)


def _decode(
    files: list[Path],
    prep: Callable[[np.ndarray, Path], T],
    progress: bool,
    description: str,
    mode: str = "RGB",
) -> tuple[list[T | None], list[tuple[Path, str]]]:
    """Decode every file in ``mode`` and pass it through ``prep`` at once (``None`` if
    unreadable)."""
    out: list[T | None] = []
    skipped: list[tuple[Path, str]] = []
    for f in track(files, total=len(files), description=description, enabled=progress):
        try:
            image = read_image(f, mode=mode)
        except ImageReadError as exc:
            out.append(None)
            # the reader's message starts with the path, which callers print beside it
            skipped.append((f, str(exc).removeprefix(f"{f}: ")))
            continue
        out.append(prep(image, f))
    return out, skipped


def _check_bad(total: int, skipped: list[tuple[Path, str]], config: DataConfig, spec: str) -> None:
    if not skipped:
        return
    if len(skipped) / total > config.max_bad_fraction or len(skipped) == total:
        first = "; ".join(f"{p} ({reason})" for p, reason in skipped[:3])
        raise DataError(
            f"{len(skipped)} of {total} images of '{spec}' could not be read, more than "
            f"data.max_bad_fraction={config.max_bad_fraction} allows. First: {first}. Run "
            f"`pixelforge data check {spec}` to list them all, then fix or remove them."
        )


def _check_aspects(pairs: list[tuple[Path, Path]], sizes: dict[Path, tuple[int, int]]) -> None:
    """Refuse pairs whose two images differ in aspect ratio: each side is resized and cropped
    on its own, so they would no longer line up (same aspect, other size is fine)."""
    bad = []
    for a, b in pairs:
        (ha, wa), (hb, wb) = sizes[a], sizes[b]
        if abs(wa * hb - wb * ha) > 0.01 * max(wa * hb, wb * ha):
            bad.append(f"{a} is {wa}x{ha} but {b} is {wb}x{hb}")
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise DataError(
            f"{len(bad)} pairs do not line up: {'; '.join(bad[:3])}{more}. The two images of a "
            "pair must show the same frame (the same aspect ratio, ideally the same size): crop "
            "or resize them to match."
        )


def _is_grey(image: np.ndarray) -> bool:
    return np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(
        image[:, :, 1], image[:, :, 2]
    )


def _split_pair(image: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    if w < 1.5 * h:
        raise DataError(
            f"{path} is {w}x{h}: paired images must hold A and B side by side (about twice as "
            "wide as tall), or the folder must have sub-folders A/ and B/."
        )
    half = w // 2
    return image[:, :half], image[:, w - half :]


def _native_channels(sides: list[list[Path]]) -> int:
    """1 when the first readable image of each side is grey, else 3: a side in colour (colour
    photos B for grey sketches A) loads both sides in colour, and a model with 3 channels
    takes grey images as they are."""
    for files in sides:
        for f in files[:20]:
            try:
                image = read_image(f, mode="RGB")
            except ImageReadError:
                continue
            if not _is_grey(image):
                return 3
            break
        else:
            return 3  # nothing readable among the first files: colour, which fits any image
    return 1


# ----------------------------------------------------------------------------- public
def inspect_folder(kind: str, path: str, spec: str) -> DatasetInfo:
    """Count files (and classes), decoding only the first image of each side."""
    root = resolve_folder(path, spec)
    class_names: list[str] | None = None
    if kind == "folder":
        files, _, class_names = folder_layout(root, spec)
        size, what = len(files), f"{len(files)} images"
        if class_names:
            what += f" in {len(class_names)} classes"
        what += f" under {root}"
        sides = [files]
    elif kind == "paired":
        a, b = paired_layout(root, spec)
        size, sides = len(a), [a] if b is None else [a, b]
        base, a_dir, b_dir = paired_dirs(root, spec)
        where = f"side by side under {base}" if b is None else f"from {a_dir} and {b_dir}"
        what = f"{len(a)} pairs {where}"
    else:
        a, b = unpaired_layout(root, spec)
        size, sides = max(len(a), len(b)), [a, b]
        what = f"{len(a)} A images and {len(b)} B images under {root}"
    return DatasetInfo(
        spec=spec, name=kind, size=size, channels=_native_channels(sides),
        num_classes=len(class_names) if class_names else 0, class_names=class_names,
        native_size=None, description=what, has_captions=False,
        has_masks=False, kind="images" if kind == "folder" else kind,
    )  # fmt: skip


def open_folder(
    kind: str, path: str, spec: str, *, image_size: int, channels: int, config: DataConfig,
    progress: bool, mattes: bool = False,
) -> ImageDataset:  # fmt: skip
    """Decode, convert and resize a folder dataset into memory (originals are not kept).

    ``mattes``: the B side of paired data is alpha mattes, each read by
    :func:`~pixelforge.data.transforms.matte_of` (a cutout's alpha channel, else a grey image)
    and stored grey in every channel."""
    root = resolve_folder(path, spec)
    info = inspect_folder(kind, path, spec)
    native = _Native()

    sizes: dict[Path, tuple[int, int]] = {}

    def prep(image: np.ndarray, f: Path) -> np.ndarray:
        native.see(image)
        sizes[f] = image.shape[:2]
        return prepare_image(image, image_size=image_size, channels=channels, config=config)

    def prep_matte(rgba: np.ndarray, f: Path) -> np.ndarray:
        grey = float_to_uint8(matte_of(rgba, str(f)) * 255.0)
        return prep(np.repeat(grey[:, :, None], 3, axis=2), f)

    def prep_pair(image: np.ndarray, f: Path) -> tuple[np.ndarray, np.ndarray]:
        a, b = _split_pair(image, f)
        return prep(a, f), (prep_matte(b, f) if mattes else prep(b, f))

    enlarged: list[Path] = []

    def prep_crops(image: np.ndarray, f: Path) -> list[np.ndarray]:
        native.see(image)
        if min(image.shape[:2]) < image_size:  # random_crops enlarges it first
            enlarged.append(f)
        rng = np.random.default_rng([config.seed, zlib.crc32(f.name.encode())])
        return random_crops(
            convert_channels(image, channels), size=image_size, count=config.patches, rng=rng,
            filter=config.resize_filter, scale=(config.patch_scale[0], config.patch_scale[1]),
        )  # fmt: skip

    if kind == "folder":
        files, labels, _ = folder_layout(root, spec)
        if config.patches:
            crops, skipped = _decode(files, prep_crops, progress, "cutting patches")
            _check_bad(len(files), skipped, config, spec)
            keep = [i for i, c in enumerate(crops) if c is not None]
            flat = [p for i in keep for p in crops[i]]  # type: ignore[union-attr]
            per = config.patches
            label_t = (
                torch.tensor([labels[i] for i in keep for _ in range(per)]) if labels else None
            )
            return ImageDataset(
                native.update(info, len(flat)), stack_images(flat), labels=label_t,
                skipped=skipped, enlarged=enlarged,
            )  # fmt: skip
        decoded, skipped = _decode(files, prep, progress, "reading images")
        _check_bad(len(files), skipped, config, spec)
        keep = [i for i, im in enumerate(decoded) if im is not None]
        label_t = torch.tensor([labels[i] for i in keep]) if labels is not None else None
        return ImageDataset(
            native.update(info, len(keep)),
            stack_images([decoded[i] for i in keep]),  # type: ignore[misc]
            labels=label_t,
            skipped=skipped,
        )
    if kind == "paired":
        files_a, files_b = paired_layout(root, spec)
        if files_b is None:  # side by side
            pair_mode = "RGBA" if mattes else "RGB"
            pairs, skipped = _decode(files_a, prep_pair, progress, "reading pairs", pair_mode)
            _check_bad(len(files_a), skipped, config, spec)
            kept = [p for p in pairs if p is not None]
            return ImageDataset(
                native.update(info, len(kept)),
                stack_images([a for a, _ in kept]),
                images_b=stack_images([b for _, b in kept]),
                skipped=skipped,
            )
    else:
        files_a, files_b = unpaired_layout(root, spec)
    dec_a, skip_a = _decode(files_a, prep, progress, "reading A")
    if mattes and kind == "paired":
        dec_b, skip_b = _decode(files_b, prep_matte, progress, "reading mattes", "RGBA")
    else:
        dec_b, skip_b = _decode(files_b, prep, progress, "reading B")
    skipped = skip_a + skip_b
    _check_bad(len(files_a) + len(files_b), skipped, config, spec)
    if kind == "paired":  # a pair with an unreadable side is dropped whole
        pairs_ab = zip(dec_a, dec_b, strict=True)
        both = [i for i, (a, b) in enumerate(pairs_ab) if a is not None and b is not None]
        raw_a, raw_b = [dec_a[i] for i in both], [dec_b[i] for i in both]
        _check_aspects([(files_a[i], files_b[i]) for i in both], sizes)
    else:
        raw_a = [im for im in dec_a if im is not None]
        raw_b = [im for im in dec_b if im is not None]
    for side, kept_side in (("A", raw_a), ("B", raw_b)):
        if not kept_side:
            raise DataError(f"no readable images on side {side} of '{spec}'.")
    size = len(raw_a) if kind == "paired" else max(len(raw_a), len(raw_b))
    return ImageDataset(
        native.update(info, size),
        stack_images(raw_a),  # type: ignore[arg-type]
        images_b=stack_images(raw_b),  # type: ignore[arg-type]
        skipped=skipped,
    )


def check_folder(kind: str, path: str, spec: str) -> CheckReport:
    """Decode every image file of a folder dataset; report the unreadable ones."""
    root = resolve_folder(path, spec)
    if kind == "unpaired":
        files_a, files_b = unpaired_layout(root, spec)
        files = files_a + files_b
    elif kind == "paired":  # all files, whether or not they pair up
        base, a_dir, b_dir = paired_dirs(root, spec)
        dirs = [base] if a_dir is None or b_dir is None else [a_dir, b_dir]
        files = [f for d in dirs for f in list_images(d)]
    else:
        files = list_images(root)
    if not files:
        raise DataError(f"no images found in {root} (from '{spec}').")
    _, skipped = _decode(files, lambda image, _: None, progress=False, description="checking")
    return CheckReport(total=len(files), readable=len(files) - len(skipped), unreadable=skipped)
