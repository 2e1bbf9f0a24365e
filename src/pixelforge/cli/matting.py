"""`pixelforge remove-bg` and `pixelforge composite`: argument parsing for background removal
(work: :mod:`pixelforge.tasks.matting` and :mod:`pixelforge.restoration.composites`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pixelforge.cli.evaluate import AsJson, _report
from pixelforge.cli.options import Threads, set_threads
from pixelforge.errors import DataError, ImageReadError


def _load_matting(spec: str | None, device: str) -> Any:
    """The matting model MODEL names (default: the shipped one), on ``device``."""
    from pixelforge.devices import as_device
    from pixelforge.tasks.matting import load_matting

    return load_matting(spec, as_device(device))


def remove_bg(
    image_or_folder: Annotated[
        Path, typer.Argument(help="An image, or a folder of images (searched recursively).")
    ],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="For one image: the PNG to write (or a folder, when it has no suffix); "
            "for a folder: the folder to write one PNG per image into.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Matting model dir, run dir or shipped name (default: matting)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
) -> None:
    """Cut out the main object: write RGBA PNGs whose alpha is the model's matte (times the
    image's own alpha: what is already transparent stays so)."""
    from pixelforge.io.images import read_image, write_png
    from pixelforge.tasks.generate import command_line, provenance
    from pixelforge.tasks.image2image import (
        folder_failures,
        folder_images,
        folder_outputs,
        png_output,
        writable,
    )
    from pixelforge.tasks.matting import DEFAULT_MODEL, cutout

    set_threads(threads)
    if image_or_folder.is_dir():
        if out_path.exists() and not out_path.is_dir():
            raise DataError(
                f"{image_or_folder} is a folder, so --out must be a folder; {out_path} is a file."
            )
        files = folder_images(image_or_folder, out_path)
        if not files:
            raise DataError(
                f"{image_or_folder}: no images found (PNG, JPEG, WebP, BMP or TIFF, searched recursively)."
            )
        targets = folder_outputs(files, image_or_folder, out_path)
    elif image_or_folder.is_file():
        files = [image_or_folder]
        if out_path.is_file() and not out_path.suffix:
            raise DataError(f"--out {out_path} is a file; give a .png name or a folder.")
        if out_path.is_dir() or not out_path.suffix:
            targets = [writable(out_path / f"{image_or_folder.stem}.png")]
        else:
            targets = [png_output(out_path)]
    else:
        raise DataError(f"{image_or_folder}: no such file or folder.")
    if len(files) == 1:  # fail on an unreadable single image before loading the model
        first = read_image(files[0], mode="RGBA")
    net = _load_matting(model, device)
    failed: list[tuple[Path, str]] = []
    for f, target in zip(files, targets, strict=True):
        try:
            pixels = first if len(files) == 1 else read_image(f, mode="RGBA")
        except ImageReadError as exc:
            failed.append((f, str(exc)))
            continue
        rgba = cutout(net, pixels)
        command = command_line(f"pixelforge remove-bg {f.name} --model {model or DEFAULT_MODEL}")
        meta = provenance(net, command, kind="cutout", model=model or DEFAULT_MODEL, source=f.name)
        write_png(target, rgba, meta)
    console = Console(highlight=False, soft_wrap=True)
    written = len(files) - len(failed)
    if image_or_folder.is_dir():
        console.print(f"wrote {written} cutout{'s' if written != 1 else ''} to {out_path}")
    else:  # as the other commands say it of one image
        console.print(f"wrote {targets[0]}")
    if failed:
        raise folder_failures(failed, len(files), out_path)


def composite(
    foreground: Annotated[Path, typer.Argument(help="The image whose object is kept.")],
    background: Annotated[Path, typer.Option(help="The new background image.")],
    out_path: Annotated[  # a string: a trailing "/" (a folder to write into) is kept
        str,
        typer.Option(
            "--out",
            help="The RGB PNG to write (ending in / or an existing folder: written into it).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Matting model for FG's alpha when it has none (default: the shipped matting)."
        ),
    ] = None,
    alpha: Annotated[
        Path | None,
        typer.Option(
            help="FG's alpha as a grey image of FG's size (white = object), or an image whose "
            "alpha channel is the matte (a cutout)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
) -> None:
    """Put FG's object on BACKGROUND: alpha from --alpha, else FG's own alpha channel, else the
    model's matte. The background is scaled to cover FG's size and centre-cropped; the output has
    FG's size."""
    from pixelforge.io.images import read_image, write_png
    from pixelforge.restoration.composites import composite_over, cover_resize
    from pixelforge.tasks.generate import command_line, provenance
    from pixelforge.tasks.image2image import output_for
    from pixelforge.tasks.matting import DEFAULT_MODEL, predict_matte, read_matte

    target = output_for(foreground, out_path)
    set_threads(threads)
    rgba = read_image(foreground, mode="RGBA")
    bg = read_image(background, mode="RGB")
    h, w = rgba.shape[:2]
    rgb = rgba[:, :, :3]
    net = None
    command = f"pixelforge composite {foreground.name} --background {background.name}"
    if alpha is not None:
        a = read_matte(alpha)
        if a.shape != (h, w):
            raise DataError(
                f"--alpha {alpha} is {a.shape[1]}x{a.shape[0]} but {foreground} is "
                f"{w}x{h}; give an alpha of the same size."
            )
        origin = f"--alpha {alpha.name}"
        command += f" --alpha {alpha.name}"
    elif rgba[:, :, 3].min() < 255:
        a = rgba[:, :, 3] / 255.0
        # straight alpha: the colour of transparent pixels is undefined, the blend ignores it
        origin = "the foreground's own alpha channel"
    else:
        net = _load_matting(model, device)
        a = predict_matte(net, rgb)
        origin = f"matting model {model or DEFAULT_MODEL}"
        command += f" --model {model or DEFAULT_MODEL}"
    out = composite_over(rgb, a, cover_resize(bg, h, w))
    meta = provenance(
        net, command_line(command), kind="composite", source=foreground.name,
        background=background.name, alpha_from=origin,
        background_fit="scaled to cover, centre-cropped",
        **({"model": model or DEFAULT_MODEL} if net is not None else {}),
        **({"alpha": alpha.name} if alpha is not None else {}),
    )  # fmt: skip
    write_png(target, out, meta)
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {target} ({w}x{h}; alpha from {origin}; background scaled to cover "
        f"{w}x{h} and centre-cropped)"
    )


def eval_matting(
    model: Annotated[str, typer.Argument(help="Matting model dir, run dir or shipped name.")],
    data: Annotated[
        str,
        typer.Argument(
            help="Held-out pairs: a folder with A/ (images) and B/ (true alpha mattes, same "
            "file names), as train matting's paired:PATH."
        ),
    ],
    as_json: AsJson = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
) -> None:
    """Alpha IoU (at 0.5), SAD (sum of |error| / 1000) and MSE of MODEL's mattes on held-out
    pairs, each image at its own size, as remove-bg runs it (mean and std over images)."""
    from pixelforge.devices import as_device
    from pixelforge.tasks.evaluate import join_processes
    from pixelforge.tasks.matting import evaluate_pairs

    set_threads(threads)
    folder = Path(data.removeprefix("paired:"))
    join_processes(as_device(device))  # under torchrun each process scores a share of pairs
    net = _load_matting(model, device)
    _report(evaluate_pairs(net, folder, name=model), as_json)


__all__ = ["composite", "eval_matting", "remove_bg"]
