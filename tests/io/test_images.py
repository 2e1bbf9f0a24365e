"""Tests for pixelforge.io.images: the guarded image reader and the deterministic PNG writer."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from pixelforge.errors import DataError, ImageReadError
from pixelforge.io import images
from pixelforge.io.images import (
    PROVENANCE_KEY,
    encode_png,
    get_max_pixels,
    image_info,
    list_images,
    read_image,
    read_image_pil,
    read_mask,
    read_provenance,
    to_pil,
    write_png,
)

RNG = np.random.default_rng(1234)


def noise(h: int, w: int, c: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def save(path: Path, image: Image.Image, fmt: str | None = None, **params: object) -> Path:
    image.save(path, format=fmt, **params)
    return path


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every pixel load (Pillow decodes pixels only through these two methods).

    Clear it after writing test images: saving loads them too.
    """
    calls: list[str] = []
    image_load, file_load = Image.Image.load, ImageFile.ImageFile.load

    def spy_image(self: Image.Image):  # type: ignore[no-untyped-def]
        calls.append("Image.load")
        return image_load(self)

    def spy_file(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        calls.append("ImageFile.load")
        return file_load(self)

    monkeypatch.setattr(Image.Image, "load", spy_image)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_file)
    return calls


# --- round trips and formats -------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "channels"), [("RGB", 3), ("L", 1), ("RGBA", 4)])
def test_png_round_trip_is_exact(tmp_path: Path, mode: str, channels: int) -> None:
    pixels = noise(7, 9, channels)
    path = save(tmp_path / "a.png", Image.fromarray(pixels[..., 0] if channels == 1 else pixels))
    out = read_image(path, mode=mode)
    assert out.dtype == np.uint8 and out.shape == (7, 9, channels)
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, pixels)
    write_png(tmp_path / "b.png", out)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png", mode=mode), pixels)


@pytest.mark.parametrize(
    ("fmt", "params", "tolerance"),
    [
        ("PNG", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("JPEG", {"quality": 95}, 40),
    ],
)
def test_every_allowed_format_reads(tmp_path: Path, fmt: str, params: dict, tolerance: int) -> None:
    pixels = np.zeros((16, 24, 3), np.uint8)
    pixels[:, :12] = (200, 30, 60)
    path = save(tmp_path / f"x.{fmt.lower()}", Image.fromarray(pixels), fmt, **params)
    assert image_info(path) == (24, 16, fmt, "RGB")
    out = read_image(path)
    assert out.shape == (16, 24, 3)
    assert np.abs(out.astype(int) - pixels).max() <= tolerance


def test_format_is_decided_by_content_not_suffix(tmp_path: Path) -> None:
    path = save(tmp_path / "really_png.jpg", Image.fromarray(noise(4, 4, 3)), "PNG")
    assert image_info(path)[2] == "PNG"
    assert read_image(path).shape == (4, 4, 3)


def test_mpo_phone_photo_reads_as_jpeg(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (8, 6), (200, 10, 10)), Image.new("RGB", (8, 6), "blue")
    path = save(tmp_path / "phone.jpg", first, "MPO", save_all=True, append_images=[second])
    assert image_info(path) == (8, 6, "JPEG", "RGB")
    assert np.abs(read_image(path)[3, 4].astype(int) - (200, 10, 10)).max() < 10  # first frame


def test_gif_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path / "anim.gif", Image.new("P", (4, 4)), "GIF")
    with pytest.raises(ImageReadError, match=r"anim\.gif.*PNG, JPEG, WebP, BMP or TIFF"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"anim\.gif"):
        image_info(path)


def test_text_file_named_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match=r"notes\.png.*not a PNG"):
        read_image(path)


def test_missing_file_says_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"missing\.png: no such file"):
        read_image(tmp_path / "missing.png")


# --- pixel cap ---------------------------------------------------------------------------------


def test_pixel_cap_refuses_before_decoding_anything(tmp_path: Path, load_calls: list[str]) -> None:
    path = save(tmp_path / "big.png", Image.new("L", (2001, 2000)))
    load_calls.clear()  # forget the loads made while saving the test image
    with pytest.raises(ImageReadError) as err:
        read_image(path, max_pixels=4_000_000)
    message = str(err.value)
    assert "big.png" in message and "2001x2000" in message and "4,002,000" in message
    assert "4,000,000" in message and "PIXELFORGE_MAX_PIXELS" in message
    assert load_calls == []  # not one pixel was decoded
    read_image(path, max_pixels=4_002_000)  # the spy does see a real decode
    assert load_calls


def test_image_info_reads_only_the_header(tmp_path: Path, load_calls: list[str]) -> None:
    path = save(tmp_path / "p.png", Image.new("P", (30, 20)))
    load_calls.clear()
    assert image_info(path) == (30, 20, "PNG", "P")
    assert load_calls == []


def test_env_var_sets_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "s.png", Image.new("RGB", (20, 20)))
    monkeypatch.setenv("PIXELFORGE_MAX_PIXELS", "399")
    assert get_max_pixels() == 399
    with pytest.raises(ImageReadError, match="400 pixels is over the limit of 399"):
        read_image(path)
    with pytest.raises(ImageReadError, match="limit of 399"):
        image_info(path)
    monkeypatch.setenv("PIXELFORGE_MAX_PIXELS", "400")
    assert read_image(path).shape == (20, 20, 3)
    monkeypatch.delenv("PIXELFORGE_MAX_PIXELS")
    assert get_max_pixels() == images.DEFAULT_MAX_PIXELS == 40_000_000


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5e6"])
def test_bad_env_var_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PIXELFORGE_MAX_PIXELS", value)
    with pytest.raises(ImageReadError, match=f"PIXELFORGE_MAX_PIXELS='{value}'.*greater than 0"):
        get_max_pixels()


@pytest.mark.parametrize("side", [40, 50])  # Pillow's warning (> limit) and error (> 2 x limit)
def test_pillow_bomb_check_becomes_image_read_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    path = save(tmp_path / "bomb.png", Image.new("L", (side, side)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match=r"bomb\.png.*decompression bomb"):
            read_image(path, max_pixels=10_000)
    assert caught == []  # an error, not a warning


# --- damaged files -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(images.ALLOWED_FORMATS))
@pytest.mark.parametrize("pillow_lenient", [False, True])
def test_truncated_file_is_an_error_not_a_partial_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, pillow_lenient: bool
) -> None:
    whole = save(tmp_path / "whole", Image.fromarray(noise(64, 64, 3)), fmt)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    # Other code may have set Pillow's global switch; pixelforge must still refuse.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", pillow_lenient)
    with pytest.raises(ImageReadError, match=r"cut\..*truncated or corrupt"):
        read_image(cut)
    assert pillow_lenient == ImageFile.LOAD_TRUNCATED_IMAGES  # restored afterwards


# --- orientation and colour --------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.full((40, 60, 3), (0, 0, 255), np.uint8)  # 60 wide, 40 high, blue
    pixels[:16, :16] = (255, 0, 0)  # red top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = save(tmp_path / "o.jpg", Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    assert image_info(path)[:2] == (40, 60)
    out = read_image(path).astype(int)
    assert out.shape == (60, 40, 3)
    assert np.abs(out[2, -3] - (255, 0, 0)).max() < 40  # top-left went to top-right
    assert np.abs(out[2, 2] - (0, 0, 255)).max() < 40


def swapped_primaries_profile() -> bytes:
    """A real, different RGB profile: sRGB with its red and blue colorants exchanged."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", icc[128:132])
    where = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 136 + 12 * i for i in range(count)}
    red, blue = where[b"rXYZ"], where[b"bXYZ"]
    icc[red : red + 8], icc[blue : blue + 8] = icc[blue : blue + 8], icc[red : red + 8]
    return bytes(icc)


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    path = save(tmp_path / "swapped.png", red, icc_profile=swapped_primaries_profile())
    out = read_image(path).astype(int)
    assert np.abs(out - (0, 0, 255)).max() <= 2  # its "red" colorant is sRGB blue


def linear_gray_profile() -> bytes:
    """A minimal ICC v2 grey profile with gamma 1.0 (linear light), built by hand."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))

    d50 = xyz(0.9642, 1.0, 0.8249)
    tags = [
        (b"wtpt", b"XYZ \0\0\0\0" + d50),
        (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, 256)),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = struct.pack(">I", start + len(body)) + b"lcms" + bytes([2, 0x10, 0, 0])
    header += b"mntrGRAYXYZ " + bytes(12) + b"acsp" + bytes(28) + d50 + bytes(48)
    return header + struct.pack(">I", len(tags)) + table + body


def test_grey_icc_profile_is_applied_and_alpha_kept(tmp_path: Path) -> None:
    pixels = np.array([[[128, 255], [0, 0]]], np.uint8)  # linear mid-grey, opaque; transparent
    path = save(tmp_path / "linear.png", Image.fromarray(pixels), icc_profile=linear_gray_profile())
    # linear 128/255 is sRGB-encoded 188; alpha passes through; transparent still goes to white
    np.testing.assert_array_equal(read_image(path, mode="LA")[0], [[188, 255], [0, 0]])
    np.testing.assert_array_equal(read_image(path, mode="L")[0, :, 0], [188, 255])


def test_embedded_srgb_profile_changes_nothing(tmp_path: Path) -> None:
    pixels = noise(8, 8, 3)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = save(tmp_path / "plain.png", Image.fromarray(pixels))
    tagged = save(tmp_path / "tagged.png", Image.fromarray(pixels), icc_profile=srgb)
    np.testing.assert_array_equal(read_image(tagged), read_image(plain))


def test_broken_icc_profile_warns_and_keeps_pixels(tmp_path: Path) -> None:
    pixels = noise(8, 8, 3)
    path = save(tmp_path / "broken.png", Image.fromarray(pixels), icc_profile=b"not a profile")
    with pytest.warns(UserWarning, match=r"broken\.png.*ICC"):
        out = read_image(path)
    np.testing.assert_array_equal(out, pixels)


# --- mode conversion rules ---------------------------------------------------------------------


def test_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 0, 0])
    pal.putpixel((1, 0), 1)
    path = save(tmp_path / "p.png", pal, transparency=0)
    np.testing.assert_array_equal(
        read_image(path, mode="RGBA")[0], [[10, 20, 30, 0], [200, 0, 0, 255]]
    )
    np.testing.assert_array_equal(read_image(path)[0], [[255, 255, 255], [200, 0, 0]])


def test_a_mask_painted_on_a_transparent_layer_selects_only_its_strokes(tmp_path: Path) -> None:
    # transparent, white, black, and half-transparent white pixels of an editor's mask layer
    pixels = np.array([[[0, 0, 0, 0], [255] * 4, [0, 0, 0, 255], [255, 255, 255, 128]]], np.uint8)
    path = tmp_path / "mask.png"
    Image.fromarray(pixels).save(path)
    np.testing.assert_array_equal(read_mask(path), [[0, 255, 0, 128]])
    assert read_image(path, mode="L")[0, 0, 0] == 255  # images still composite over white
    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)  # an opaque mask reads as its grey
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "grey.png"), grey)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [0, 0, 0, 128]]], np.uint8)
    path = save(tmp_path / "rgba.png", Image.fromarray(pixels))
    np.testing.assert_array_equal(read_image(path, mode="RGBA"), pixels)
    out = read_image(path, mode="RGB")[0].astype(int)
    assert out[0].tolist() == [255, 255, 255]  # fully transparent -> white, not (10, 20, 30)
    assert out[1].tolist() == [10, 20, 30]
    assert np.abs(out[2] - 127).max() <= 1


def test_la_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.array([[[0, 0], [0, 255], [100, 255]]], np.uint8)
    path = save(tmp_path / "la.png", Image.fromarray(pixels))
    np.testing.assert_array_equal(read_image(path, mode="LA"), pixels)
    assert read_image(path, mode="L")[0, :, 0].tolist() == [255, 0, 100]
    assert read_image(path, mode="RGB")[0, 2].tolist() == [100, 100, 100]


def test_grey_and_colour_conversions(tmp_path: Path) -> None:
    path = save(tmp_path / "rgb.png", Image.new("RGB", (2, 2), (255, 0, 0)))
    assert read_image(path, mode="L")[0, 0, 0] == 76  # ITU-R 601 luma: 0.299 * 255
    assert read_image(path, mode="RGBA")[0, 0].tolist() == [255, 0, 0, 255]
    grey = save(tmp_path / "l.png", Image.new("L", (2, 2), 90))
    assert read_image(grey)[0, 0].tolist() == [90, 90, 90]
    pil = read_image_pil(grey, mode="LA")
    assert pil.mode == "LA" and pil.getpixel((0, 0)) == (90, 255)


def test_16_bit_png_scaled_or_kept(tmp_path: Path) -> None:
    values = np.array([[0, 257, 1000, 65535]], np.uint16)
    path = save(tmp_path / "deep.png", Image.fromarray(values))
    assert Image.open(path).mode.startswith("I")
    eight = read_image(path, mode="L")
    assert eight.dtype == np.uint8 and eight[0, :, 0].tolist() == [0, 1, 4, 255]  # round(v/257)
    kept = read_image(path, mode="L", keep_16bit=True)
    assert kept.dtype == np.uint16 and kept.shape == (1, 4, 1)
    np.testing.assert_array_equal(kept[..., 0], values)
    rgba = read_image(path, mode="RGBA", keep_16bit=True)
    assert rgba.shape == (1, 4, 4) and rgba[0, 3].tolist() == [65535] * 4
    assert rgba.flags.c_contiguous and rgba.flags.writeable
    eight_bit_source = save(tmp_path / "flat.png", Image.new("L", (2, 2), 7))
    assert read_image(eight_bit_source, keep_16bit=True).dtype == np.uint8


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")
    out = read_image(path).astype(int)
    assert np.abs(out[8, 8] - (255, 0, 0)).max() < 10


def test_float_tiff_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path / "f.tif", Image.fromarray(np.ones((3, 3), np.float32)), "TIFF")
    with pytest.raises(ImageReadError, match=r"f\.tif.*floating-point"):
        read_image(path)


# --- deterministic PNG writing and provenance --------------------------------------------------


def test_encode_png_is_deterministic() -> None:
    pixels = noise(5, 6, 3)
    first = encode_png(pixels, {"seed": 1, "model": "unet", "nested": {"b": 2, "a": 1}})
    again = encode_png(pixels.copy(), {"nested": {"a": 1, "b": 2}, "model": "unet", "seed": 1})
    assert first == again
    assert encode_png(pixels, {"seed": 2}) != encode_png(pixels, {"seed": 1})


def test_encode_png_drops_varying_metadata() -> None:
    pixels = noise(5, 6, 3)
    tagged = Image.fromarray(pixels)
    tagged.info.update(icc_profile=swapped_primaries_profile(), dpi=(300, 300))
    assert encode_png(tagged) == encode_png(pixels)


def test_provenance_round_trip(tmp_path: Path) -> None:
    provenance = {"model": "unet", "seed": 7, "prompt": "café ☕", "steps": [1, 2]}
    write_png(tmp_path / "out.png", noise(4, 4, 3), provenance)
    assert read_provenance(tmp_path / "out.png") == provenance
    write_png(tmp_path / "bare.png", noise(4, 4, 3))
    assert read_provenance(tmp_path / "bare.png") is None


def test_write_png_is_identical_across_paths_and_makes_folders(tmp_path: Path) -> None:
    pixels, provenance = noise(9, 9, 4), {"run": "abc", "step": 10}
    write_png(tmp_path / "one.png", pixels, provenance)
    write_png(tmp_path / "deep" / "er" / "two.png", pixels, provenance)
    one, two = (tmp_path / "one.png").read_bytes(), (tmp_path / "deep/er/two.png").read_bytes()
    assert one == two == encode_png(pixels, provenance)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "er", "one.png", "two.png"]


def test_invalid_provenance_json_is_an_error(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text(PROVENANCE_KEY, "{not json")
    path = save(tmp_path / "bad.png", Image.new("RGB", (2, 2)), pnginfo=info)
    with pytest.raises(ImageReadError, match=r"bad\.png.*not valid JSON"):
        read_provenance(path)


def test_provenance_must_be_json() -> None:
    with pytest.raises(ValueError, match="provenance must be plain JSON"):
        encode_png(noise(2, 2, 3), {"loss": float("nan")})


# --- to_pil ------------------------------------------------------------------------------------


def test_to_pil_from_float_chw_tensor() -> None:
    tensor = torch.rand(3, 4, 5)
    image = to_pil(tensor)
    assert image.mode == "RGB" and image.size == (5, 4)
    expected = np.rint(tensor.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.array(image), expected)
    clipped = to_pil(torch.tensor([[-0.5, 0.5, 1.5]]))
    assert clipped.mode == "L" and np.array(clipped).tolist() == [[0, 128, 255]]


def test_to_pil_from_uint8_arrays() -> None:
    rgb = noise(4, 5, 3)
    np.testing.assert_array_equal(np.array(to_pil(rgb)), rgb)
    grey = noise(4, 5, 1)[..., 0]
    image = to_pil(grey)
    assert image.mode == "L"
    np.testing.assert_array_equal(np.array(image), grey)
    deep = to_pil(np.array([[0, 65535]], np.uint16))
    assert np.array(deep).tolist() == [[0, 65535]]


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 3, 4, 5), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4, 4), np.int64),
        np.zeros((4, 4, 3), np.uint16),
        np.full((2, 2), np.nan, np.float32),
    ],
)
def test_to_pil_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"cannot make an image|must have one channel"):
        to_pil(bad)


def test_to_pil_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="cannot make an image from list"):
        to_pil([[0, 1]])


# --- listing -----------------------------------------------------------------------------------


def test_list_images_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["b.png", "a/c.JPG", "a/b.tiff", "z.webp", "notes.txt", ".hidden.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.png").write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/b.tiff", "a/c.JPG", "b.png", "z.webp"]


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        list_images(tmp_path / "nope")


def test_str_paths_are_accepted(tmp_path: Path) -> None:
    path = save(tmp_path / "s.png", Image.fromarray(noise(3, 3, 3)))
    np.testing.assert_array_equal(read_image(str(path)), read_image(path))
    assert image_info(str(path)) == (3, 3, "PNG", "RGB")
