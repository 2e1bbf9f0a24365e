"""`pixelforge latent ...`: argument parsing for the latent-space lab (work: pixelforge.latent)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator

latent_app = typer.Typer(
    help="The latent-space lab: interpolate, encode, attribute directions, edits, neighbours.",
    no_args_is_help=True,
)

Model = Annotated[str, typer.Argument(help="Model dir, run dir or shipped model name.")]
ClassLabel = Annotated[
    int | None, typer.Option("--class", help="Class index for a conditional model.")
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
Zoom = Annotated[int, typer.Option(help="Enlarge pixels by this factor in the picture.")]


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _load(model: str, device: str) -> ImageGenerator:
    from pixelforge.devices import as_device
    from pixelforge.hub import load
    from pixelforge.latent import check_generator

    return check_generator(load(model, device=as_device(device)))


def _command(*parts: object) -> str:
    return " ".join(["pixelforge latent", *(str(p) for p in parts if p is not None and p != "")])


@latent_app.command()
def interpolate(
    model: Model,
    out_path: Annotated[Path, typer.Option("--out", help="strip.png (frames in a row) or .gif.")],
    seeds: Annotated[
        tuple[int, int] | None, typer.Option(help="Two seeds: the ends of the path.")
    ] = None,
    from_: Annotated[
        Path | None, typer.Option("--from", help="Latent file (from `latent encode`): start.")
    ] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Latent file: end.")] = None,
    steps: Annotated[int, typer.Option(help="Frames, both ends included.")] = 8,
    class_label: ClassLabel = None,
    zoom: Zoom = 1,
    device: Device = "auto",
) -> None:
    """Frames between two latents: slerp for Gaussian latents, lerp in a mapped (W) space."""
    from pixelforge.latent import interpolate as run
    from pixelforge.latent import model_fingerprint, save_frames

    m = _load(model, device)
    if seeds is not None and (from_ is not None or to is not None):
        raise ConfigError("give either --seeds A B or --from/--to latent files, not both.")
    if seeds is None and (from_ is None or to is None):
        raise ConfigError("interpolate needs --seeds A B, or both --from and --to latent files.")
    if seeds is not None:
        result = run(m, seeds=seeds, steps=steps, class_label=class_label)
        ends = f"--seeds {seeds[0]} {seeds[1]}"
    else:
        result = run(m, start=from_, end=to, steps=steps, class_label=class_label)
        ends = f"--from {from_} --to {to}"
    cls = None if result.class_label is None else f"--class {result.class_label}"
    meta = {
        "family": m.family,
        "model_sha256": model_fingerprint(m),
        "command": _command("interpolate", model, ends, f"--steps {steps}", cls),
        "lab_space": result.space,
        "class_label": result.class_label,
    }
    save_frames(result.images, out_path, meta, zoom=zoom)
    how = "slerp" if result.space == "gaussian" else "lerp in W"
    _out().print(f"wrote {out_path} ({steps} frames, {how})")


@latent_app.command()
def encode(
    model: Model,
    image: Annotated[Path, typer.Argument(help="Image file to encode.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Latent file to write (.safetensors).")
    ] = None,
    recon: Annotated[
        Path | None, typer.Option(help="Also write image|reconstruction side by side (.png).")
    ] = None,
    start: Annotated[
        str, typer.Option(help="auto, encoder (VAE) or mean (optimise from the mean latent).")
    ] = "auto",
    steps: Annotated[
        int | None, typer.Option(help="Optimisation steps (default: 0 from an encoder, else 300).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate of the inversion.")] = 0.05,
    restarts: Annotated[int, typer.Option(help="Start points tried from --start mean.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the random restarts.")] = 0,
    class_label: ClassLabel = None,
    device: Device = "auto",
) -> None:
    """Encode IMAGE into the model's latent space (VAE encoder or GAN inversion)."""
    import torch

    from pixelforge.latent import encode as run
    from pixelforge.latent import load_image, model_fingerprint, save_frames

    m = _load(model, device)
    if out_path is not None and out_path.suffix.lower() != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got '{out_path}'.")
    inv = run(
        m, image, class_label=class_label, start=start, steps=steps, lr=lr, restarts=restarts,
        seed=seed, out=out_path,
    )  # fmt: skip
    mse0, mse1 = float(inv.mse_start[0]), float(inv.mse[0])
    console = _out()
    console.print(
        f"{inv.method}: reconstruction MSE {mse1:.5f} (PSNR {inv.psnr[0]:.2f} dB) at "
        f"{inv.reconstructions.shape[-1]}px; at the start point: MSE {mse0:.5f}"
    )
    if recon is not None:
        original = ((load_image(image, m) + 1) / 2).clamp(0, 1)
        meta = {
            "family": m.family,
            "model_sha256": model_fingerprint(m),
            "command": _command("encode", model, image),
            "mse": mse1,
        }
        save_frames(torch.cat([original, inv.reconstructions]), recon, meta)
        console.print(f"wrote {recon}")
    if out_path is not None:
        console.print(f"wrote {out_path}")


@latent_app.command()
def direction(
    model: Model,
    data: Annotated[str, typer.Option(help="Labelled dataset: digits, shapes, folder:PATH ...")],
    attribute: Annotated[str, typer.Option(help="The label (name or index) to move towards.")],
    out_path: Annotated[Path, typer.Option("--out", help="Direction file (.safetensors).")],
    versus: Annotated[
        str | None, typer.Option(help="Compare with this label instead of all the others.")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Examples per side (at most).")] = 64,
    steps: Annotated[
        int, typer.Option(help="Inversion steps per example (models without an encoder).")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed for picking examples.")] = 0,
    device: Device = "auto",
) -> None:
    """An attribute direction: mean latent of ATTRIBUTE minus that of the rest (or --versus)."""
    from pixelforge.latent import direction as run

    m = _load(model, device)
    if out_path.suffix.lower() != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got '{out_path}'.")
    d = run(m, data, attribute, versus=versus, n=n, steps=steps, seed=seed, out=out_path)
    _out().print(
        f"direction '{d.attribute}' vs '{d.versus}' from {d.counts['attribute']} + "
        f"{d.counts['versus']} examples of {data} via {d.method}; norm {float(d.vector.norm()):.3f}"
    )
    _out().print(f"wrote {out_path}")


@latent_app.command()
def edit(
    model: Model,
    direction_file: Annotated[
        Path, typer.Option("--direction", help="Direction file from `latent direction`.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="strip.png or .gif (or one .png).")],
    image: Annotated[Path | None, typer.Argument(help="Image to edit (or use --seed).")] = None,
    seed: Annotated[int | None, typer.Option(help="Edit the sample of this seed.")] = None,
    latent: Annotated[
        Path | None, typer.Option(help="Edit the latent in this file (from `latent encode`).")
    ] = None,
    strength: Annotated[float, typer.Option(help="How far to move along the direction.")] = 2.0,
    frames: Annotated[
        int, typer.Option(help="Strengths -X..X in a strip; 1: one image at --strength.")
    ] = 5,
    steps: Annotated[
        int | None, typer.Option(help="Inversion steps when editing an image.")
    ] = None,
    class_label: ClassLabel = None,
    zoom: Zoom = 1,
    device: Device = "auto",
) -> None:
    """Move a seed's sample, an image or a latent file along an attribute direction."""
    from pixelforge.latent import edit as run
    from pixelforge.latent import model_fingerprint, save_frames

    m = _load(model, device)
    images = run(
        m, direction_file, seed=seed, image=image, latent=latent, strength=strength,
        frames=frames, class_label=class_label, steps=steps,
    )  # fmt: skip
    source = f"--seed {seed}" if seed is not None else (f"--latent {latent}" if latent else image)
    meta = {
        "family": m.family,
        "model_sha256": model_fingerprint(m),
        "command": _command(
            "edit",
            model,
            source,
            f"--direction {direction_file}",
            f"--strength {strength}",
            f"--frames {frames}",
        ),
        "strength": strength,
    }
    save_frames(images, out_path, meta, zoom=zoom)
    _out().print(f"wrote {out_path}")


@latent_app.command()
def neighbors(
    model: Model,
    image: Annotated[Path, typer.Argument(help="Query image.")],
    data: Annotated[str, typer.Option(help="Dataset to search: digits, folder:PATH ...")],
    out_path: Annotated[Path, typer.Option("--out", help="Grid .png: the query, then neighbours.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of neighbours.")] = 8,
    space: Annotated[
        str, typer.Option(help="latent (encoder or inversion) or pixel (any model).")
    ] = "latent",
    max_images: Annotated[int, typer.Option(help="Search at most this many data images.")] = 512,
    steps: Annotated[int, typer.Option(help="Inversion steps (models without an encoder).")] = 100,
    class_label: ClassLabel = None,
    zoom: Zoom = 1,
    device: Device = "auto",
) -> None:
    """The K data images nearest to IMAGE by distance in the model's latent space."""
    from pixelforge.latent import model_fingerprint, save_frames
    from pixelforge.latent import neighbors as run

    m = _load(model, device)
    if out_path.suffix.lower() != ".png":
        raise ConfigError(f"--out must end in .png, got '{out_path}'.")
    nb = run(
        m, image, data, k=k, space=space, class_label=class_label, max_images=max_images,
        steps=steps,
    )  # fmt: skip
    meta = {
        "family": m.family,
        "model_sha256": model_fingerprint(m),
        "command": _command("neighbors", model, image, f"--data {data}", f"-k {k}"),
        "indices": nb.indices,
        "distances": nb.distances,
        "space": nb.space,
    }
    save_frames(nb.grid_images(), out_path, meta, zoom=zoom)
    console = _out()
    console.print(f"distances in {nb.space}; searched {nb.searched} images of {data}")
    for rank, (i, dist) in enumerate(zip(nb.indices, nb.distances, strict=True), 1):
        label = "" if nb.labels is None else f"  label {nb.labels[rank - 1]}"
        console.print(f"{rank:>3}. index {i}  distance {dist:.4f}{label}")
    console.print(f"wrote {out_path}")
