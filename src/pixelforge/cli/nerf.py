"""`pixelforge nerf ...`: argument parsing for radiance fields (work: :mod:`pixelforge.nerf`,
:mod:`pixelforge.tasks.nerf`, training through the shared trainer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pixelforge.cli.options import Threads, set_threads
from pixelforge.errors import ConfigError

nerf_app = typer.Typer(
    help="Neural radiance fields: train on posed images, render new views, score held-out views.",
    no_args_is_help=True,
)
MODELS = {"grid": "nerf-grid", "mlp": "nerf-mlp"}  # --model -> family
BARE_KEYS = {"downscale": "train.downscale"}  # --set shortcuts without a section
MAX_RENDER_PIXELS = 4096 * 4096  # one rendered view


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _bar(label: str, enabled: bool) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=_err(), disable=not enabled, transient=True,
    )  # fmt: skip


@nerf_app.command("make-scene")
def make_scene(
    name: Annotated[str | None, typer.Argument(help="Scene name (see --list).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scene folder to create.")] = None,
    views: Annotated[int, typer.Option(help="Training views.")] = 100,
    size: Annotated[int, typer.Option(help="Image side in pixels (square).")] = 100,
    val_views: Annotated[int, typer.Option(help="Validation views.")] = 10,
    test_views: Annotated[int, typer.Option(help="Test views.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the scene and its cameras.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the built-in scenes.")] = False,
) -> None:
    """Ray-trace a built-in scene into a NeRF synthetic folder (transforms_*.json + RGBA PNGs)."""
    from pixelforge.nerf.make_scene import SCENES
    from pixelforge.nerf.make_scene import make_scene as build

    if list_:
        for key, text in SCENES.items():
            _out().print(f"{key:10s} {text}")
        return
    if name is None or out_dir is None:
        raise ConfigError("give a scene NAME and --out DIR (see --list for the names).")
    path = build(
        name, views=views, size=size, out=out_dir, seed=seed, val_views=val_views,
        test_views=test_views, overwrite=overwrite,
    )  # fmt: skip
    _out().print(f"wrote {path} ({views} train, {val_views} val, {test_views} test views)")


@nerf_app.command("train")
def train(
    data: Annotated[
        str, typer.Argument(help="Scene folder (transforms_*.json or transforms.json).")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder; an existing run is resumed.")
    ] = Path("runs/scene"),
    model: Annotated[
        str | None, typer.Option(help="grid (default: fast) or mlp (classic NeRF).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key: --set train.lr=0.01, --set downscale=2."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Shortcut for --set train.steps=N.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    threads: Threads = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a radiance field on a scene folder into --out (resumes when --out holds a run)."""
    from pixelforge.config import split_overrides
    from pixelforge.runs import is_run_dir
    from pixelforge.training.run import prepare_run, read_run
    from pixelforge.training.trainer import Trainer

    set_threads(threads)
    if model is not None and model not in MODELS:
        raise ConfigError(f"unknown --model {model!r}; use grid or mlp.")
    pairs = []
    for item in set_ or []:
        key, sep, value = item.partition("=")
        pairs.append(f"{BARE_KEYS.get(key.strip(), key)}{sep}{value}")
    overrides = split_overrides(pairs)
    if steps is not None:
        overrides.setdefault("train", {})["steps"] = steps
    if device is not None:
        overrides.setdefault("train", {})["device"] = device
    family = MODELS[model or "grid"]
    if is_run_dir(out_dir):
        stored = read_run(out_dir).family.name
        if model is None:
            family = stored
    spec, resumed = prepare_run(family, data, out_dir, overrides=overrides)
    trainer = Trainer(spec, out_dir, progress=progress)
    verb = "resuming" if resumed else "training"
    _err().print(f"{verb}: {spec.family.name} on {data} -> {out_dir} ({trainer.device})")
    last = trainer.fit()
    _out().print(f"done: {trainer.step} steps; model: {last / 'model'}")


def _run_scene(run: str) -> tuple[str | None, int]:
    """The scene folder and downscale a run trained on (None when RUN is not a run folder)."""
    from pixelforge.runs import is_run_dir
    from pixelforge.training.nerf import scene_path
    from pixelforge.training.run import read_run

    path = Path(run)
    for candidate in (path, path.parent.parent):  # a run, or one of its checkpoints
        if is_run_dir(candidate):
            spec = read_run(candidate)
            return str(scene_path(spec.data)), int(spec.train.downscale)
    return None, 1


def _training_downscale(model: Any, file: Path) -> int:
    """The downscale that brings the images of ``file`` to the size ``model`` was trained at
    (its rig's), as its run would score them; 1 when they are not a whole multiple of it."""
    from pixelforge.nerf.scenes import load_poses

    rig = model.config.rig
    if rig is None:
        return 1
    width = load_poses(file).width  # read from the file or its first image's header
    k = max(1, round(width / rig.width))
    return k if round(width / k) == rig.width else 1


def _load(run: str, device: str) -> Any:
    from pixelforge import hub
    from pixelforge.devices import as_device

    model = hub.load(run, device=as_device(device))
    if getattr(model, "family", None) not in MODELS.values():
        raise ConfigError(f"{run} is not a radiance field (nerf-grid or nerf-mlp) model.")
    return model


@nerf_app.command("render")
def render(
    run: Annotated[str, typer.Argument(help="A nerf run folder, checkpoint or model folder.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="orbit.gif / orbit.mp4, a .png (one view) or a folder.")
    ],
    orbit: Annotated[bool, typer.Option(help="Circle the scene (default without --pose).")] = False,
    frames: Annotated[int, typer.Option(help="Frames of the orbit.")] = 60,
    pose: Annotated[
        Path | None,
        typer.Option(help="transforms json whose cameras to render (OpenGL camera-to-world)."),
    ] = None,
    depth: Annotated[bool, typer.Option(help="Render depth maps instead of colour.")] = False,
    elevation: Annotated[
        float | None, typer.Option(help="Orbit elevation in degrees (default: the rig's).")
    ] = None,
    radius: Annotated[
        float | None, typer.Option(help="Orbit radius (default: the rig's camera distance).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Render at this fraction of the image size.")] = 1.0,
    fps: Annotated[float, typer.Option(help="Frames per second of a video.")] = 24,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render new views of a trained scene: an orbit video, or the cameras of a pose file."""
    import torch

    from pixelforge.io.images import write_png
    from pixelforge.nerf.scenes import load_poses, scene_cameras
    from pixelforge.tasks import generate
    from pixelforge.tasks.nerf import (
        VIDEO_SUFFIXES,
        depth_image,
        render_views,
        to_uint8,
        write_video,
    )
    from pixelforge.tasks.nerf import orbit as make_orbit

    set_threads(threads)
    if not scale > 0:
        raise ConfigError(f"--scale must be above 0, got {scale}.")
    model = _load(run, device)
    template: Any
    rig = model.config.rig
    if pose is not None:  # a file without image sizes: the model's training size
        template = load_poses(pose, size=None if rig is None else (rig.width, rig.height))
    elif rig is not None:  # the training cameras, kept in the model's config
        template = rig
    else:  # a model from before configs kept their rig: the cameras of its run's scene
        scene, downscale = _run_scene(run)
        if scene is None:
            raise ConfigError(
                f"{run} is a model folder without its run: give --pose transforms.json for the "
                "cameras (with --orbit to circle them)."
            )
        template = scene_cameras(scene, "train", downscale=downscale)
    aabb = torch.tensor(model.config.aabb, dtype=torch.float32).reshape(2, 3)
    center = aabb.mean(dim=0)
    if orbit or pose is None:
        cameras = make_orbit(template, frames, center=center, elevation=elevation, radius=radius)
    else:
        cameras = template
    if scale != 1.0:
        cameras = cameras.scaled(scale)
    if cameras.width * cameras.height > MAX_RENDER_PIXELS:
        raise ConfigError(
            f"a {cameras.width} x {cameras.height} render is above the cap of "
            f"{MAX_RENDER_PIXELS:,} pixels per view; lower --scale."
        )
    suffix = out_path.suffix.lower()
    if suffix not in (*VIDEO_SUFFIXES, ".png", ""):
        stem = out_path.with_suffix("")
        raise ConfigError(
            f"--out {out_path}: views are written as {stem}.png (one view), {stem}.gif or "
            f"{stem}.mp4 (a video), or into a folder."
        )
    if suffix == ".png" and len(cameras) != 1:
        raise ConfigError(f"--out {out_path.name} holds one view; {len(cameras)} to render: "
                          "give a folder, .gif or .mp4.")  # fmt: skip
    with _bar("rendering", progress) as bar:
        task = bar.add_task("render", total=len(cameras))
        views = render_views(model, cameras, progress=lambda i, n: bar.update(task, completed=i))
    if depth:
        half = float((aabb[1] - aabb[0]).norm()) / 2
        dist = (cameras.centers - center).norm(dim=-1)
        near, far = float(dist.min()) - half, float(dist.max()) + half
        images = [
            depth_image(v["depth"][..., 0], v["acc"][..., 0], near=max(near, 0.0), far=far)
            for v in views
        ]
    else:
        images = [to_uint8(v["rgb"]) for v in views]
    command = f"pixelforge nerf render {run}" + (f" --pose {pose}" if pose is not None else "")
    if orbit or pose is None:
        command += f" --orbit --frames {frames}"
        command += f" --elevation {elevation}" if elevation is not None else ""
        command += f" --radius {radius}" if radius is not None else ""
    command += (f" --scale {scale}" if scale != 1.0 else "") + (" --depth" if depth else "")
    provenance = generate.provenance(model, command, kind="nerf render", depth=depth)
    if suffix in VIDEO_SUFFIXES:
        write_video(images, out_path, fps=fps)
    elif suffix == ".png":
        write_png(out_path, images[0], provenance=provenance)
    else:
        out_path.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            write_png(out_path / f"view_{i:04d}.png", image, provenance=provenance)
    _out().print(f"wrote {out_path} ({len(images)} view{'s' if len(images) > 1 else ''})")


@nerf_app.command("eval")
def evaluate(
    run: Annotated[str, typer.Argument(help="A nerf run folder, checkpoint or model folder.")],
    split: Annotated[
        str,
        typer.Option(
            help="test, val, or a transforms json with images (default: test if the scene has "
            "it, else val)."
        ),
    ] = "auto",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Also write the results as JSON here.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """PSNR and SSIM of held-out views, per view and mean (JSON)."""
    from pixelforge.io.atomic import atomic_write_text
    from pixelforge.nerf.scenes import load_scene
    from pixelforge.tasks.nerf import evaluate_split

    set_threads(threads)
    model = _load(run, device)
    scene_dir, downscale = _run_scene(run)
    if split in ("auto", "test", "val", "train"):
        if scene_dir is None:
            raise ConfigError(
                f"{run} is a model folder without its run: give --split transforms_test.json "
                "(a transforms file with its images)."
            )
        scene = load_scene(scene_dir, downscale=downscale)
        name = split
        if split == "auto":
            name = "test" if "test" in scene.splits else "val"
        if name not in scene.splits:
            raise ConfigError(
                f"{scene_dir} has no {name!r} split; it has {', '.join(scene.splits)}."
            )
    else:
        file = Path(split)
        if scene_dir is None:  # a model folder alone: its views at the size it was trained at
            downscale = _training_downscale(model, file)
        scene = load_scene(file, downscale=downscale)
        stem = file.stem.removeprefix("transforms_")
        name = stem if stem in scene.splits else next(iter(scene.splits))
    part = scene.splits[name]
    with _bar(f"eval {name}", progress) as bar:
        task = bar.add_task("eval", total=len(part.cameras))
        result = evaluate_split(
            model, part.images, part.cameras, part.files,
            progress=lambda i, n: bar.update(task, completed=i),
        )  # fmt: skip
    result = {
        "model": str(run), "scene": str(scene.root), "split": name,
        "size": [part.cameras.width, part.cameras.height], **result,
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    if out_path is not None:
        atomic_write_text(out_path, text + "\n")
    _out().print(text)
