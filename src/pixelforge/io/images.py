"""The one module through which pixelforge reads and writes every image.

Reading rules (this docstring is the documentation of the conversion rules):

* **Formats.** Only PNG, JPEG, WebP, BMP and TIFF (:data:`ALLOWED_FORMATS`) are read. The format
  is decided from the file's content by Pillow restricted to those formats, never from its
  suffix; anything else (GIF, PSD, ICO, text, ...) raises :class:`ImageReadError`. JPEG files
  that Pillow labels ``MPO`` (phone photos with extra embedded pictures) are JPEG.
* **Size cap.** ``width * height`` from the header is compared with ``max_pixels`` (argument,
  else :func:`get_max_pixels`: ``PIXELFORGE_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`) before a
  single pixel is decoded. Pillow's own decompression-bomb warning or error also becomes an
  :class:`ImageReadError`; pixelforge does not lift Pillow's limit (``PIL.Image.MAX_IMAGE_PIXELS``).
* **Damaged files.** Truncated or corrupt data is an error, never a partial image: while
  pixelforge decodes, ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is forced to ``False`` (and restored
  afterwards) even if other code set it. Multi-frame files (TIFF, animated WebP) give frame one.
* **Orientation.** The EXIF orientation is applied (``ImageOps.exif_transpose``); an unreadable
  EXIF block gives a warning and the pixels as stored. :func:`exif_orientation` tells which was
  applied (a JPEG model needs the pixels as stored, where the file's blocks are).
* **Colour.** An embedded ICC profile is converted to sRGB with LittleCMS (``PIL.ImageCms``,
  perceptual intent). A broken profile, or one that does not fit the pixels (e.g. a CMYK profile
  on RGB data), gives a :func:`warnings.warn` and the pixel values are used as they are, i.e.
  treated as sRGB: a bad profile should not make a whole dataset unreadable.
* **Modes.** ``1`` -> ``L``; ``P`` -> ``RGBA`` if it has transparency, else ``RGB``; ``PA`` ->
  ``RGBA``; ``L``/``RGB`` with a transparent-colour key -> ``LA``/``RGBA``; ``CMYK`` -> ``RGB``
  through its ICC profile if present, else Pillow's conversion; ``YCbCr``/``LAB``/``HSV`` ->
  ``RGB``. 16-bit grey (``I;16``, ``I;16B``, ``I`` holding values 0..65535, 16-bit PNG) becomes
  8-bit as ``round(v / 257)`` (the exact inverse of 8->16 bit expansion: 0->0, 65535->255) unless
  ``keep_16bit=True``, which returns it as uint16 with no ICC conversion. ``I`` outside 0..65535
  and 32-bit float ``F`` are refused: their value range cannot be guessed.
* **Requested mode.** ``L`` -> ``RGB`` replicates the grey value; ``RGB`` -> ``L`` is ITU-R 601
  luma (Pillow's ``"L"`` conversion). Dropping alpha composites over **white**, as in the
  NeRF-synthetic data and most "transparent background" images, so a fully transparent pixel
  is white, not whatever colour happened to be stored under it. Adding alpha makes it opaque.
  Masks (:func:`read_mask`) composite over **black**: a transparent pixel is not selected.
* **Arrays** are H x W x C (C = 3, 1, 4, 2 for RGB, L, RGBA, LA), C-contiguous, writable, uint8
  (uint16 only for ``keep_16bit=True`` on a 16-bit source; grey is replicated, alpha 65535).

Writing: :func:`encode_png` gives deterministic bytes (same pixels and provenance -> same bytes
with the same Pillow/zlib build): no timestamps, ICC, EXIF or dpi chunks, compression level
:data:`PNG_COMPRESS_LEVEL`, and provenance as compact sorted JSON in an ``iTXt`` chunk named
:data:`PROVENANCE_KEY`, written before the pixel data so it can be read from the header.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, PngImagePlugin

from pixelforge.errors import DataError, ImageReadError, PixelforgeError
from pixelforge.io.atomic import atomic_write_bytes

ALLOWED_FORMATS: frozenset[str] = frozenset({"PNG", "JPEG", "WEBP", "BMP", "TIFF"})
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
)
DEFAULT_MAX_PIXELS: int = 40_000_000
PROVENANCE_KEY = "pixelforge"
MAX_PIXELS_ENV = "PIXELFORGE_MAX_PIXELS"
PNG_COMPRESS_LEVEL = 6

_FORMAT_ORDER = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_ALLOWED_TEXT = "PNG, JPEG, WebP, BMP or TIFF"
_CHANNELS = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# Stored mode -> mode pixelforge works in (P and 16-bit grey are handled in _decode).
_CANONICAL = {
    **{"1": "L", "L": "L", "LA": "LA", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB"},
    **{"RGB": "RGB", "RGBA": "RGBA", "CMYK": "CMYK", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"},
}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "I;16B"}
# Errors Pillow's parsers and decoders raise on malformed input.
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    *(OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError),
    *(struct.error, zlib.error, Image.DecompressionBombError),
)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def get_max_pixels() -> int:
    """The pixel cap: ``PIXELFORGE_MAX_PIXELS`` if set (an integer > 0), else the default.

    An empty value counts as unset. Values above Pillow's own limit (``PIL.Image.MAX_IMAGE_PIXELS``,
    about 89 million pixels) have no further effect, since Pillow still refuses such images.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ImageReadError(
            f"{MAX_PIXELS_ENV}={raw!r} is not a whole number of pixels greater than 0. Set it to "
            f"e.g. 60000000, or unset it to use the default of {DEFAULT_MAX_PIXELS:,} pixels."
        )
    return value


# Pillow keeps LOAD_TRUNCATED_IMAGES and the warning filters in process-wide state. Every
# pixelforge read runs inside _strict_pillow(); a counter makes concurrent reads in threads
# share one strict section, which is entered by the first and left by the last.
_strict_lock = threading.Lock()
_strict_depth = 0
_saved_truncated = False
_saved_warnings: Any = None


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    global _strict_depth, _saved_truncated, _saved_warnings
    with _strict_lock:
        if _strict_depth == 0:
            _saved_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
            _saved_warnings = warnings.catch_warnings()
            _saved_warnings.__enter__()
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        _strict_depth += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_depth -= 1
            if _strict_depth == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _saved_truncated
                _saved_warnings.__exit__(None, None, None)


def _format_of(im: Image.Image) -> str:
    return "JPEG" if im.format == "MPO" else str(im.format)


@contextlib.contextmanager
def _open_image(path: Path, max_pixels: int | None) -> Iterator[ImageFile.ImageFile]:
    """Open ``path`` lazily (header only), check format and cap, close it afterwards."""
    if not path.exists():
        raise ImageReadError(f"{path}: no such file. Check the path and that the file exists.")
    if not path.is_file():
        raise ImageReadError(f"{path}: is not a file (a folder?). Pass the path of an image file.")
    with _strict_pillow():
        try:
            im = Image.open(path, formats=_FORMAT_ORDER)
        except Image.UnidentifiedImageError:
            raise ImageReadError(
                f"{path}: is not a {_ALLOWED_TEXT} image, or its header is damaged (the format is "
                f"detected from the content, not the name). Convert it to PNG or remove it."
            ) from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageReadError(
                f"{path}: Pillow refuses it as a possible decompression bomb ({exc}). pixelforge "
                f"keeps Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels; downscale the image."
            ) from None
        except PermissionError:
            raise ImageReadError(f"{path}: permission denied. Make the file readable.") from None
        except _DECODE_ERRORS as exc:
            raise ImageReadError(
                f"{path}: the file is truncated or corrupt; its header cannot be read ({exc}). "
                "Re-export or re-download the file, or remove it."
            ) from exc
        with im:
            if _format_of(im) not in ALLOWED_FORMATS:  # pragma: no cover - formats= prevents it
                raise ImageReadError(f"{path}: {im.format} is not allowed; use {_ALLOWED_TEXT}.")
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(
                    f"{path}: {width}x{height} = {width * height:,} pixels is over the limit of "
                    f"{max_pixels:,} pixels. Downscale the image, or raise the limit with the "
                    f"environment variable {MAX_PIXELS_ENV} (e.g. {MAX_PIXELS_ENV}="
                    f"{width * height})."
                )
            yield im


def _resolve_cap(max_pixels: int | None) -> int:
    if max_pixels is None:
        return get_max_pixels()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be an int > 0 or None, got {max_pixels!r}")
    return max_pixels


def _check_mode(mode: str) -> int:
    if mode not in _CHANNELS:
        raise ValueError(f"mode must be one of {sorted(_CHANNELS)}, got {mode!r}")
    return _CHANNELS[mode]


def image_info(path: str | os.PathLike[str]) -> tuple[int, int, str, str]:
    """``(width, height, format, mode)`` read from the header; no pixel is decoded.

    Checks the format and the pixel cap like :func:`read_image`. Width and height are as
    :func:`read_image` returns them (swapped for EXIF orientations 5-8); ``mode`` is the stored
    Pillow mode (e.g. ``"P"``, ``"I;16"``). EXIF placed after a PNG's pixel data is not seen.
    """
    p = Path(path)
    with _open_image(p, get_max_pixels()) as im:
        width, height = im.size
        if _orientation_of(im) in (5, 6, 7, 8):
            width, height = height, width
        return width, height, _format_of(im), im.mode


def _orientation_of(im: Image.Image) -> int:
    """The EXIF orientation (1-8) of an open image, from its header; 1 when there is none or
    it is unreadable or out of range (``ImageOps.exif_transpose`` leaves such images as stored)."""
    try:  # the base method never loads pixels (PngImageFile.getexif would)
        orientation = Image.Image.getexif(im).get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return orientation if orientation in range(1, 9) else 1


def exif_orientation(path: str | os.PathLike[str] | Image.Image) -> int:
    """The EXIF orientation (1-8) that :func:`read_image` applies to the file at ``path`` (or
    :func:`image_array` to a Pillow image); 1 for none. Read from the header; no pixel is
    decoded. A model whose input has a block grid (a JPEG's) runs on the pixels as stored, where
    the file's blocks are (``tasks.image2image.apply_model``'s ``orientation``)."""
    if isinstance(path, Image.Image):
        return _orientation_of(path)
    with _open_image(Path(path), get_max_pixels()) as im:
        return _orientation_of(im)


@lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the profile ``icc`` to sRGB for ``mode`` pixels; None if it doesn't fit."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    space = profile.profile.xcolor_space.strip()
    if space != {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}[mode]:
        return None
    return ImageCms.buildTransform(profile, _SRGB, mode, "RGB")


def _to_srgb(im: Image.Image, icc: bytes | None, path: Path | str) -> Image.Image:
    """Apply the ICC profile (if any) to an L/LA/RGB/RGBA/CMYK image; return L/LA/RGB/RGBA."""
    if icc:
        colour_mode = im.mode.removesuffix("A") if im.mode in ("LA", "RGBA") else im.mode
        try:
            transform = _srgb_transform(bytes(icc), colour_mode)
            problem = None if transform else f"it does not fit {colour_mode} pixels"
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            transform, problem = None, f"it is broken ({exc})"
        if transform is None:
            warnings.warn(
                f"{path}: ignoring its embedded ICC colour profile because {problem}; "
                "its pixel values are used as they are (as sRGB).",
                stacklevel=4,
            )
        else:
            alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
            colour = im.convert(colour_mode) if alpha is not None else im
            im = transform.apply(colour)
            if alpha is not None:
                im.putalpha(alpha)
    return im.convert("RGB") if im.mode == "CMYK" else im


def _decode(path: Path, max_pixels: int | None, keep_16bit: bool) -> Image.Image | np.ndarray:
    """Oriented sRGB image in L/LA/RGB/RGBA, or an H x W uint16 array (``keep_16bit``)."""
    with _open_image(path, _resolve_cap(max_pixels)) as im:
        try:
            im.load()
        except _DECODE_ERRORS as exc:
            raise ImageReadError(
                f"{path}: the image data is truncated or corrupt ({exc}); pixelforge never uses "
                "a partial image. Re-export or re-download the file, or remove it."
            ) from exc
        try:
            ImageOps.exif_transpose(im, in_place=True)
        except _DECODE_ERRORS as exc:
            warnings.warn(
                f"{path}: unreadable EXIF ({exc}); orientation not applied.", stacklevel=3
            )
        return _canonical(im, path, keep_16bit)


def _canonical(im: Image.Image, path: Path | str, keep_16bit: bool) -> Image.Image | np.ndarray:
    """A loaded image in L/LA/RGB/RGBA sRGB (or H x W uint16, ``keep_16bit``) by the module's
    mode and colour rules; ``path`` names it in errors and warnings."""
    icc = im.info.get("icc_profile")
    if im.mode in _SIXTEEN_BIT:
        gray = np.array(im)
        if im.mode == "I" and gray.size and (gray.min() < 0 or gray.max() > 65535):
            raise ImageReadError(
                f"{path}: 32-bit integer pixels ({gray.min()}..{gray.max()}) do not fit 16 "
                "bits, so their range is unknown. Save it as a 8- or 16-bit PNG instead."
            )
        gray16 = np.array(gray, dtype=np.uint16, order="C")
        if keep_16bit:
            if icc:
                warnings.warn(f"{path}: 16-bit data kept; ICC profile not applied.", stacklevel=3)
            return gray16
        gray8 = (gray16.astype(np.uint32) + 128) // 257  # == round(v / 257), no ties
        base: Image.Image = Image.fromarray(gray8.astype(np.uint8))
    elif im.mode == "F":
        raise ImageReadError(
            f"{path}: 32-bit floating-point pixels have no defined range, so pixelforge does "
            "not guess how to scale them. Save the image as an 8- or 16-bit PNG instead."
        )
    elif im.mode == "P":
        base = im.convert("RGBA" if im.has_transparency_data else "RGB")
    elif im.mode in ("L", "RGB") and "transparency" in im.info:
        base = im.convert(im.mode + "A")
    elif im.mode in _CANONICAL:
        base = im.convert(_CANONICAL[im.mode])  # always a new image, independent of the file
    else:
        raise ImageReadError(
            f"{path}: pixel mode {im.mode!r} is not supported. Convert it to an RGB PNG."
        )
    return _to_srgb(base, icc, path)


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert an L/LA/RGB/RGBA image to ``mode``; alpha is dropped by compositing over white."""
    if im.mode in ("LA", "RGBA") and mode not in ("LA", "RGBA"):
        flat = Image.new(im.mode[:-1], im.size, "white")
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    return im if im.mode == mode else im.convert(mode)


def read_image(
    path: str | os.PathLike[str],
    *,
    mode: str = "RGB",
    keep_16bit: bool = False,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read an image as an H x W x C array following the module's rules.

    ``mode`` is ``"RGB"``, ``"L"``, ``"RGBA"`` or ``"LA"`` (C = 3, 1, 4, 2). The array is uint8,
    or uint16 when ``keep_16bit`` is true and the source is 16-bit grey. Raises
    :class:`ImageReadError` for missing, disallowed, oversized, truncated or corrupt files.
    """
    channels = _check_mode(mode)
    decoded = _decode(Path(path), max_pixels, keep_16bit)
    if isinstance(decoded, np.ndarray):
        opaque = np.full_like(decoded, 65535)
        planes = {"L": [decoded], "LA": [decoded, opaque], "RGB": [decoded] * 3}
        planes["RGBA"] = [decoded] * 3 + [opaque]
        return np.stack(planes[mode], axis=-1)
    array = np.array(_to_mode(decoded, mode), dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)


def image_array(image: Any, *, mode: str = "RGB", name: str = "the image") -> np.ndarray:
    """An image already in memory as :func:`read_image` gives a file's: a Pillow image (its EXIF
    orientation applied; the caller's image is not changed) or anything :func:`to_pil` takes
    (a boolean array counts as black and white), by the same mode, palette, 16-bit and colour
    rules, as an H x W x C uint8 array in ``mode``. ``name`` names it in errors."""
    channels = _check_mode(mode)
    if isinstance(image, Image.Image):
        im = ImageOps.exif_transpose(image)
    else:
        if isinstance(image, np.ndarray) and image.dtype == np.bool_:
            image = image.astype(np.uint8) * 255
        im = to_pil(image)
    decoded = _canonical(im, name, keep_16bit=False)
    assert isinstance(decoded, Image.Image)
    array = np.array(_to_mode(decoded, mode), dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)


def _mask_of(grey_alpha: np.ndarray) -> np.ndarray:
    """An H x W x 2 grey and alpha array as a mask: grey composited over black."""
    wide = grey_alpha.astype(np.uint16)
    return ((wide[..., 0] * wide[..., 1] + 127) // 255).astype(np.uint8)


def read_mask(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask (white = selected, as an inpainting hole) as an H x W uint8 array.

    Like :func:`read_image` in grey, except that transparency counts as **black**: a mask
    painted in white on a transparent layer, as image editors export one, selects only its
    strokes (over white, the usual rule, every transparent pixel would be selected)."""
    return _mask_of(read_image(path, mode="LA", max_pixels=max_pixels))


def mask_array(image: Any, *, name: str = "the mask") -> np.ndarray:
    """:func:`read_mask` for a mask already in memory (as :func:`image_array` takes it)."""
    return _mask_of(image_array(image, mode="LA", name=name))


def read_image_pil(
    path: str | os.PathLike[str], *, mode: str = "RGB", max_pixels: int | None = None
) -> Image.Image:
    """Like :func:`read_image`, but return an 8-bit Pillow image in ``mode``."""
    _check_mode(mode)
    decoded = _decode(Path(path), max_pixels, keep_16bit=False)
    assert isinstance(decoded, Image.Image)
    return _to_mode(decoded, mode)


def to_pil(image: Any) -> Image.Image:
    """Make a Pillow image from a Pillow image, a numpy array or a torch tensor.

    Arrays are H x W or H x W x C (C = 1, 2, 3, 4 -> L, LA, RGB, RGBA). Tensors are C x H x W
    when their first dimension is 1-4, else H x W x C. uint8 is taken as is; uint16 is allowed
    for one channel (mode ``I;16``); floats are taken as [0, 1], clipped, scaled to 0-255 and
    rounded. Raises TypeError for other objects and ValueError for other shapes or dtypes.
    """
    if isinstance(image, Image.Image):
        return image
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is already imported
    if torch is not None and isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        tensor = tensor.float() if tensor.is_floating_point() else tensor
        array = tensor.numpy()
        if array.ndim == 3 and 1 <= array.shape[0] <= 4:
            array = array.transpose(1, 2, 0)
        image = array
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"cannot make an image from {type(image).__name__}; pass a PIL image, a numpy array "
            "or a torch tensor"
        )
    array = image[..., None] if image.ndim == 2 else image
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4 or 0 in array.shape:
        raise ValueError(
            f"cannot make an image from shape {tuple(image.shape)}: expected H x W or H x W x C "
            "with C in 1-4 (tensors may also be C x H x W)"
        )
    if array.dtype == np.uint16:
        if array.shape[2] != 1:
            raise ValueError(
                "uint16 images must have one channel (Pillow has no 16-bit colour modes); "
                "convert to uint8 or float in [0, 1] first"
            )
        return Image.fromarray(np.ascontiguousarray(array[..., 0]))
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError("cannot make an image from values that are NaN or infinite")
        array = array.astype(np.promote_types(array.dtype, np.float32), copy=False)
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(
            f"cannot make an image from dtype {array.dtype}: use uint8 (0-255), float in [0, 1] "
            "or single-channel uint16"
        )
    array = np.ascontiguousarray(array)
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def _provenance_json(provenance: dict[str, Any]) -> str:
    if not isinstance(provenance, dict):
        raise TypeError(f"provenance must be a dict, got {type(provenance).__name__}")
    try:
        return json.dumps(
            provenance, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"provenance must be plain JSON (str keys; str, number, bool, None, list or dict "
            f"values; no NaN): {exc}"
        ) from exc


def encode_png(image: Any, provenance: dict[str, Any] | None = None) -> bytes:
    """PNG bytes for ``image`` (anything :func:`to_pil` takes), deterministic.

    The same pixels and provenance always give identical bytes (for one Pillow/zlib build): no
    timestamp, ICC, EXIF or dpi chunks, fixed compression. ``provenance`` is stored as compact
    JSON with sorted keys in an ``iTXt`` chunk named :data:`PROVENANCE_KEY`.
    """
    im = to_pil(image)
    if im.mode not in _PNG_MODES:
        raise ValueError(f"cannot store a {im.mode} image as PNG; convert it to RGB/RGBA/L/LA")
    info = PngImagePlugin.PngInfo()
    if provenance is not None:
        info.add_itxt(PROVENANCE_KEY, _provenance_json(provenance), zip=False)
    buffer = io.BytesIO()
    im.save(
        buffer,
        format="PNG",
        pnginfo=info,
        compress_level=PNG_COMPRESS_LEVEL,
        optimize=False,
        icc_profile=None,  # otherwise Pillow copies im.info["icc_profile"]
    )
    return buffer.getvalue()


def write_png(
    path: str | os.PathLike[str], image: Any, provenance: dict[str, Any] | None = None
) -> None:
    """Write :func:`encode_png` bytes to ``path`` atomically, creating parent folders. A file
    system that refuses (no room, no permission, a file where a folder must be) is a
    :class:`PixelforgeError` naming ``path``; nothing is left at ``path``."""
    data = encode_png(image, provenance)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise PixelforgeError(
            f"cannot write {path}: {exc.strerror or exc}. Free some disk space, or write to "
            "another place."
        ) from None


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance dict stored by :func:`encode_png`, or None if the file has none.

    Reads the header only (no size cap applies). Raises :class:`ImageReadError` if the chunk
    is not a JSON object.
    """
    p = Path(path)
    with _open_image(p, None) as im:
        raw = im.info.get(PROVENANCE_KEY) if _format_of(im) == "PNG" else None
    if raw is None:
        return None
    fix = "Write the image again with pixelforge, or remove that chunk."
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImageReadError(
            f"{p}: its {PROVENANCE_KEY!r} PNG text chunk is not valid JSON ({exc.msg} at "
            f"character {exc.pos}); the file was edited or not written by pixelforge. {fix}"
        ) from None
    if not isinstance(data, dict):
        raise ImageReadError(
            f"{p}: its {PROVENANCE_KEY!r} PNG text chunk holds a JSON {type(data).__name__}, "
            f"not an object. {fix}"
        )
    return data


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by their path parts.

    A file counts when its lower-case suffix is in :data:`IMAGE_EXTENSIONS` (the content is
    checked only when read). Hidden files and folders (name starting with ``.``) are skipped;
    symbolic links to folders are not followed. Raises DataError if ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder. Check the path of the image folder.")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            path = Path(dirpath, name)
            suffix_ok = path.suffix.lower() in IMAGE_EXTENSIONS
            if suffix_ok and not name.startswith(".") and path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).parts)
