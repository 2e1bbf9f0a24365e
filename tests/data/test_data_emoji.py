"""The built-in emoji dataset: a real render when a colour-emoji font is installed, and a clear
error (naming the package and the environment variable) when it is not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixelforge.data import check_dataset, inspect_dataset, open_dataset
from pixelforge.data import emoji as emoji_mod
from pixelforge.errors import DataError


def _installed_font() -> Path | None:
    try:
        return emoji_mod.find_emoji_font()
    except DataError:
        return None


def test_env_var_pointing_nowhere_gives_an_actionable_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(emoji_mod.FONT_ENV, str(tmp_path / "missing.ttf"))
    with pytest.raises(DataError) as exc:
        open_dataset("emoji", image_size=16, channels=3)
    message = str(exc.value)
    assert "PIXELFORGE_EMOJI_FONT" in message and "missing.ttf" in message
    assert "apt-get install fonts-noto-color-emoji" in message


def test_no_font_anywhere_gives_an_actionable_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(emoji_mod.FONT_ENV, raising=False)
    monkeypatch.setattr(emoji_mod, "FONT_DIRS", [tmp_path])
    with pytest.raises(DataError, match="fonts-noto-color-emoji") as exc:
        inspect_dataset("emoji")
    assert "PIXELFORGE_EMOJI_FONT" in str(exc.value) and str(tmp_path) in str(exc.value)


def test_a_black_and_white_font_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not plain.is_file():
        pytest.skip("DejaVuSans.ttf is not installed")
    monkeypatch.setenv(emoji_mod.FONT_ENV, str(plain))
    with pytest.raises(DataError, match="not a colour-emoji font"):
        inspect_dataset("emoji")


@pytest.mark.skipif(_installed_font() is None, reason="no colour-emoji font installed")
def test_emoji_render_in_colour_on_white_with_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(emoji_mod.FONT_ENV, raising=False)
    info = inspect_dataset("emoji")
    assert info.has_captions and info.num_classes == 0 and info.channels == 3
    ds = open_dataset("emoji", image_size=16, channels=3)
    assert len(ds) == info.size > 1000  # Noto Color Emoji: ~1,350 single-codepoint emoji
    assert ds.images.shape[1:] == (3, 16, 16) and ds.labels is None
    assert len(set(ds.captions)) == len(ds)
    smile = ds.images[ds.captions.index("grinning face")].float()
    assert (smile[:, 0, 0] == 255).all()  # corner: white background
    r, g, b = smile[:, 8, 8]  # centre: a yellow face
    assert r > 180 and g > 130 and b < 120
    again = open_dataset("emoji", image_size=16, channels=1)
    assert again.images.shape[1] == 1 and again.captions == ds.captions
    report = check_dataset("emoji")
    assert report.ok and report.total == len(ds)
    monkeypatch.setenv(emoji_mod.FONT_ENV, str(_installed_font()))  # the variable works too
    assert torch.equal(open_dataset("emoji", image_size=16, channels=3).images, ds.images)
