"""The built-in ``emoji`` dataset: every single-codepoint emoji an installed colour font draws.

The font is ``$PIXELFORGE_EMOJI_FONT`` when set, else the first ``NotoColorEmoji*.ttf`` found in
the usual font folders (:data:`FONT_DIRS`). Noto Color Emoji is a bitmap (CBDT) font that only
renders at size 109. Candidate codepoints come from the Unicode emoji blocks
(:data:`EMOJI_RANGES`); a codepoint is kept when it has a Unicode name and the font draws a
non-empty glyph for it (missing glyphs render as the empty ``.notdef``). Skin-tone modifiers and
regional-indicator letters are left out. Glyphs are composited over white, padded to a square and
resized to the requested size; the result is cached in-process per size and filter.
"""

from __future__ import annotations

import functools
import math
import os
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pixelforge.data.transforms import convert_channels, resize_image
from pixelforge.errors import DataError

#: Environment variable naming the colour-emoji font file to use.
FONT_ENV = "PIXELFORGE_EMOJI_FONT"
#: Folders searched (recursively) for ``NotoColorEmoji*.ttf`` when the variable is unset.
FONT_DIRS: list[Path] = [
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
    Path("/Library/Fonts"),
    Path.home() / "Library/Fonts",
]
FONT_PATTERN = "NotoColorEmoji*.ttf"
#: The only size at which Noto Color Emoji's bitmaps render.
FONT_SIZE = 109
#: Unicode blocks holding emoji (inclusive ranges).
EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F000, 0x1F2FF),  # mahjong, cards, enclosed alphanumerics and ideographs
    (0x1F300, 0x1FAFF),  # pictographs, emoticons, transport, supplemental symbols
    (0x2190, 0x21FF),  # arrows
    (0x2300, 0x23FF),  # technical (watch, hourglass, media controls)
    (0x25A0, 0x25FF),  # geometric shapes
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2900, 0x297F),  # supplemental arrows
    (0x2B00, 0x2BFF),  # miscellaneous symbols and arrows (star, large squares)
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
)
_EXCLUDED = set(range(0x1F3FB, 0x1F400)) | set(range(0x1F1E6, 0x1F200))
_INSTALL_HINT = (
    "Install a colour-emoji font (Debian/Ubuntu: `apt-get install fonts-noto-color-emoji`; "
    f"Fedora: `dnf install google-noto-emoji-color-fonts`) or set {FONT_ENV} to the path of "
    "NotoColorEmoji.ttf."
)


def find_emoji_font() -> Path:
    """The colour-emoji font file; :class:`DataError` saying how to install one when missing."""
    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise DataError(
                f"{FONT_ENV} is set to {configured}, which is not a file. Point it at a "
                f"colour-emoji font such as NotoColorEmoji.ttf, or unset it. {_INSTALL_HINT}"
            )
        return path
    for folder in FONT_DIRS:
        if folder.is_dir():
            found = sorted(folder.rglob(FONT_PATTERN))
            if found:
                return found[0]
    searched = ", ".join(str(d) for d in FONT_DIRS)
    raise DataError(
        f"the built-in 'emoji' dataset needs a colour-emoji font and none was found "
        f"(looked for {FONT_PATTERN} under {searched}). {_INSTALL_HINT}"
    )


def _load_font(path: Path) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), FONT_SIZE)
    except OSError as exc:
        raise DataError(
            f"cannot use {path} as the emoji font ({exc}); it must be a colour-emoji font that "
            f"renders at size {FONT_SIZE}, like Noto Color Emoji. {_INSTALL_HINT}"
        ) from None


def _draw(font: ImageFont.FreeTypeFont, text: str, cell: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGBA", cell, (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
    return canvas


def _cell(font: ImageFont.FreeTypeFont) -> tuple[int, int]:
    _, _, right, bottom = font.getbbox("\U0001f600")
    return max(1, math.ceil(right)), max(1, math.ceil(bottom))


def _has_colour(rgba: np.ndarray) -> bool:
    """True when some visible pixel is clearly not grey."""
    visible = rgba[rgba[:, :, 3] > 128][:, :3].astype(np.int16)
    return bool(visible.size) and bool((visible.max(axis=1) - visible.min(axis=1) > 40).any())


@functools.lru_cache(maxsize=4)
def _glyphs(path: str, mtime: float) -> tuple[tuple[str, str], ...]:
    """``(character, caption)`` for every candidate the font draws (``mtime`` keys the cache)."""
    font = _load_font(Path(path))
    cell = _cell(font)
    notdef = np.asarray(_draw(font, "\U000f0000", cell))  # private use: drawn as .notdef
    found = []
    coloured = False
    for start, stop in EMOJI_RANGES:
        for cp in range(start, stop + 1):
            if cp in _EXCLUDED:
                continue
            ch = chr(cp)
            name = unicodedata.name(ch, "")
            if not name:
                continue
            pixels = np.asarray(_draw(font, ch, cell))
            if pixels[:, :, 3].any() and not np.array_equal(pixels, notdef):
                found.append((ch, name.lower()))
                coloured = coloured or _has_colour(pixels)
    if not coloured:
        raise DataError(
            f"the font {path} draws no emoji in colour ({len(found)} in black and white); it is "
            f"not a colour-emoji font. {_INSTALL_HINT}"
        )
    return tuple(found)


def emoji_list() -> list[tuple[str, str]]:
    """``(character, caption)`` of every emoji in the dataset, in codepoint-block order."""
    path = find_emoji_font()
    return list(_glyphs(str(path), path.stat().st_mtime))


@functools.lru_cache(maxsize=4)
def _render(path: str, mtime: float, image_size: int, filter: str) -> np.ndarray:
    font = _load_font(Path(path))
    cell = _cell(font)
    side = max(cell)
    out = np.empty((len(_glyphs(path, mtime)), image_size, image_size, 3), dtype=np.uint8)
    for i, (ch, _) in enumerate(_glyphs(path, mtime)):
        square = Image.new("RGBA", (side, side), (255, 255, 255, 0))
        square.paste(_draw(font, ch, cell), ((side - cell[0]) // 2, (side - cell[1]) // 2))
        rgb = convert_channels(np.asarray(square), 3)  # over white
        out[i] = resize_image(rgb, image_size, mode="stretch", filter=filter)
    out.flags.writeable = False
    return out


def render_emoji(image_size: int, filter: str) -> tuple[np.ndarray, list[str]]:
    """``(images, captions)``: ``N x image_size x image_size x 3`` ``uint8`` RGB over white.

    Cached in-process per (font, size, filter); treat the array as read-only.
    """
    path = find_emoji_font()
    mtime = path.stat().st_mtime
    images = _render(str(path), mtime, image_size, filter)
    return images, [caption for _, caption in _glyphs(str(path), mtime)]
