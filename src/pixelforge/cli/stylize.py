"""`pixelforge stylize`: argument parsing for style transfer (work: :mod:`pixelforge.tasks.
stylize`, math: :mod:`pixelforge.style.gatys`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pixelforge.cli.options import Threads, set_threads
from pixelforge.errors import ConfigError

VGG_NOTE = (
    "note: the VGG19 weights were not found, so style transfer uses a seeded random-weight VGG19; "
    "results are weaker than with the real VGG19 weights. Get them with `pixelforge weights "
    "fetch vgg19` (or, offline, `pixelforge weights import --name vgg19 vgg19-dcbb9e9d.pth` on "
    "a copy you have)."
)


def _scales(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(f"--scales takes fractions like 0.5,1.0, got '{text}'.") from None


def stylize(
    content: Annotated[
        Path | None, typer.Argument(help="An image, or a folder of images.", show_default=False)
    ] = None,
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Output PNG (one image; ending in / or an existing folder: written into it) or "
            "folder (a folder of images).",
        ),
    ] = None,
    style: Annotated[
        list[str] | None,
        typer.Option(
            help="Style image file or builtin:NAME (see --list-styles); repeat to mix styles."
        ),
    ] = None,
    style_weight: Annotated[
        list[float] | None,
        typer.Option(help="Mixing weight of each --style, in the same order (default: equal)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="A saved fast-style model (model dir or name) instead of --style."),
    ] = None,
    method: Annotated[str, typer.Option(help="With --style: gatys (optimisation).")] = "gatys",
    iterations: Annotated[
        int | None, typer.Option(help="Loss evaluations per scale (default 200).")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="lbfgs (default) or adam.")] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Longest side the image is stylized at (default 256; 0: as it is)."),
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="Start from: content (default) or noise.")
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(help="Coarse-to-fine fractions of --size, e.g. 0.5,1.0 (default 1.0)."),
    ] = None,
    content_weight: Annotated[
        float | None, typer.Option(help="Weight of the content term (default 1).")
    ] = None,
    style_loss_weight: Annotated[
        float | None, typer.Option(help="Weight of the style term (default 300).")
    ] = None,
    tv_weight: Annotated[
        float | None, typer.Option(help="Weight of the smoothness term (default 10).")
    ] = None,
    strength: Annotated[
        float, typer.Option(help="Blend with the content: 0 = content, 1 = full style.")
    ] = 1.0,
    preserve_color: Annotated[
        bool,
        typer.Option("--preserve-color", help="Keep the content's colours (style luminance only)."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the noise init and built-in styles.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the losses.")] = True,
    list_styles: Annotated[
        bool, typer.Option("--list-styles", help="List the built-in styles and exit.")
    ] = False,
) -> None:
    """Stylize an image or a folder: Gatys optimisation with --style, or a fast-style --model."""
    import warnings

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if list_styles:
        from pixelforge.style.builtin import BUILTIN_STYLES

        for name, (_, about) in BUILTIN_STYLES.items():
            out.print(f"builtin:{name:<12} {about}")
        return
    if content is None or out_path is None:
        raise ConfigError("give CONTENT (an image or folder) and --out (or --list-styles).")
    if bool(style) == (model is not None):
        raise ConfigError(
            "give exactly one of --style (Gatys optimisation) or --model (fast style)."
        )
    gatys_flags = (iterations, optimizer, size, init, scales, content_weight, style_loss_weight)
    if model is not None and (
        style_weight or any(v is not None for v in (*gatys_flags, tv_weight))
    ):
        raise ConfigError(
            "--model runs a saved style: it takes no --style-weight or Gatys options."
        )
    set_threads(threads)

    from pixelforge.devices import as_device
    from pixelforge.features.vgg import RandomWeightsWarning
    from pixelforge.io.images import image_info
    from pixelforge.style.gatys import Callback, GatysConfig, fit_longest, style_vgg
    from pixelforge.tasks.image2image import input_output_pairs
    from pixelforge.tasks.stylize import check_size, check_strength, check_styles, run_stylize

    check_strength(strength)
    if method != "gatys":
        raise ConfigError(f"unknown --method '{method}'; known: gatys (or a fast-style --model).")
    dev = as_device(device)
    options: dict[str, Any] = {
        k: v
        for k, v in (
            ("iterations", iterations),
            ("optimizer", optimizer),
            ("init", init),
            ("scales", _scales(scales)),
            ("content_weight", content_weight),
            ("style_weight", style_loss_weight),
            ("tv_weight", tv_weight),
        )
        if v is not None
    }
    if size is not None:
        options["size"] = None if size == 0 else size
    options["seed"] = seed
    cfg = GatysConfig.with_options(**options)
    network = None
    input_output_pairs(content, out_path)  # a wrong --out or CONTENT fails before any work
    if not content.is_dir():  # so does one unreadable image; in a folder, one is skipped and
        width, height, _, _ = image_info(content)  # named at the end, after the others are written
        if style:
            check_size(fit_longest((height, width), cfg.size), cfg.size)
    if style:
        check_styles(style)
        if style_weight and len(style_weight) != len(style):
            raise ConfigError(
                f"give one --style-weight per --style: {len(style)} style(s), "
                f"{len(style_weight)} weight(s)."
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RandomWeightsWarning)
            network = style_vgg(device=dev)
        if any(issubclass(w.category, RandomWeightsWarning) for w in caught):
            err.print(VGG_NOTE)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[terms]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not progress or model is not None,
    )

    def callback_for(name: str) -> Callback:
        task = bar.add_task(name, total=cfg.iterations * len(cfg.scales), terms="")

        def report(step: int, total: int, terms: dict[str, float]) -> None:
            text = f"content {terms['content']:.3f} style {terms['style']:.4f} tv {terms['tv']:.4f}"
            bar.update(task, completed=step, total=total, terms=text)

        return report

    command = f"pixelforge stylize {content} " + (
        f"--model {model}" if model is not None else " ".join(f"--style {s}" for s in style or [])
    )
    command += "".join(f" --style-weight {w}" for w in style_weight or [])
    command += f" --strength {strength} --seed {seed}" + (" --preserve-color" * preserve_color)
    with bar:
        written = run_stylize(
            content, out_path, style=style, style_weights=style_weight, model=model,
            strength=strength, preserve_color=preserve_color, config=cfg, device=dev,
            callback_for=callback_for, network=network, command=command,
        )  # fmt: skip
    out.print(
        f"wrote {written[0]}" if len(written) == 1 else f"wrote {len(written)} images to {out_path}"
    )


__all__ = ["stylize"]
