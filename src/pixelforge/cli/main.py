"""The ``pixelforge`` command line: argument parsing only; the work lives in the library.

A user mistake ends with one line on stderr (``error: ...``) and a non-zero exit code; a
traceback means a bug.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pixelforge.cli.convert import export_app, import_app
from pixelforge.cli.dip import dip
from pixelforge.cli.evaluate import eval_app
from pixelforge.cli.latent import latent_app
from pixelforge.cli.matting import composite, eval_matting, remove_bg
from pixelforge.cli.nerf import nerf_app
from pixelforge.cli.options import Threads, set_threads
from pixelforge.cli.restore import register as register_restore
from pixelforge.cli.study import study_app
from pixelforge.cli.stylize import stylize
from pixelforge.cli.translate import translate
from pixelforge.errors import ConfigError, ModelLoadError, PixelforgeError

app = typer.Typer(
    name="pixelforge",
    help="Train, sample and inspect generative imaging models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(help="The model families pixelforge can train.", no_args_is_help=True)
data_app = typer.Typer(help="Built-in datasets and user folders.", no_args_is_help=True)
weights_app = typer.Typer(
    help="Weight files: fetch, import and list known weights; convert trusted pickles.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(weights_app, name="weights")
eval_app.command("matting")(eval_matting)
app.add_typer(eval_app, name="eval")
app.add_typer(latent_app, name="latent")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(study_app, name="study")
app.add_typer(nerf_app, name="nerf")
app.command()(translate)
app.command()(stylize)
register_restore(app)
app.command()(dip)
app.command("remove-bg")(remove_bg)
app.command()(composite)


def out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------- train


@app.command()
def train(
    family: Annotated[
        str | None,
        typer.Argument(
            help="Model family (see `pixelforge models list`); may be left out when resuming --out."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Dataset: a built-in name, folder:PATH, paired:PATH, unpaired:PATH."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder; an existing run is resumed.")
    ] = Path("runs/run"),
    config: Annotated[
        Path | None, typer.Option(help="JSON file with model/train/data sections.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override one key: --set train.lr=1e-4.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Shortcut for --set train.steps=N.")] = None,
    device: Annotated[
        str | None, typer.Option(help="Shortcut for --set train.device=D (auto, cpu, cuda).")
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="Start from this MODEL's weights (new runs only).")
    ] = None,
    threads: Threads = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the full config and exit.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train FAMILY on --data into --out (resumes when --out holds a run)."""
    from pixelforge.config import load_json, split_overrides
    from pixelforge.training.run import prepare_run
    from pixelforge.training.trainer import Trainer

    set_threads(threads)
    overrides = split_overrides(list(set_ or []))
    if steps is not None:
        overrides.setdefault("train", {})["steps"] = steps
    if device is not None:
        overrides.setdefault("train", {})["device"] = device
    file_values = load_json(config) if config else None
    spec, resumed = prepare_run(
        family, data, out_dir, config_file=file_values, overrides=overrides, init=init
    )
    if print_config:
        out().print_json(json.dumps(spec.to_json()))
        return
    from pixelforge import runs
    from pixelforge.tasks.evaluate import is_main_process

    latest = runs.latest_checkpoint(out_dir) if resumed else None
    if latest is not None and latest[0] >= spec.train.steps:  # said before any data is read
        if is_main_process():
            err().print(
                f"{out_dir} has finished: it has trained its {latest[0]} steps (train.steps), "
                "so there is nothing to do. Give a higher --steps to train longer."
            )
            out().print(f"done: {latest[0]} steps; model: {latest[1] / runs.MODEL_SUBDIR}")
        return
    trainer = Trainer(spec, out_dir, progress=progress)
    if trainer.is_main:
        verb = f"resuming at step {latest[0]}" if latest else "training"
        err().print(
            f"{verb}: {spec.family.name} on {spec.data} -> {out_dir} ({trainer.device}, "
            f"{trainer.world_size} process{'es' if trainer.world_size > 1 else ''})"
        )
        skipped = getattr(trainer.dataset, "skipped", [])
        if skipped:  # within data.max_bad_fraction: trained without them, said once
            err().print(
                f"skipped {len(skipped)} unreadable image{'s' if len(skipped) > 1 else ''}: "
                f"{_first_three([f'{p} ({why})' for p, why in skipped], '; ')}. "
                f"`pixelforge data check {spec.data}` lists them all."
            )
        enlarged = getattr(trainer.dataset, "enlarged", [])
        if enlarged:  # their crops are blurred upsamplings: poor targets for restoration
            many = len(enlarged) > 1
            err().print(
                f"{len(enlarged)} image{'s are' if many else ' is'} smaller than the "
                f"{spec.model.image_size}-pixel crops and {'were' if many else 'was'} enlarged "
                "to cut them (blurred: a restoration model learns less from them): "
                f"{_first_three([str(p) for p in enlarged], ', ')}. Use larger photos or a "
                "smaller model.image_size."
            )
    last = trainer.fit()
    if trainer.is_main:
        out().print(f"done: {trainer.step} steps; model: {last / 'model'}")


def _first_three(names: list[str], sep: str) -> str:
    """The first three of ``names`` joined by ``sep``, and how many more there are."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return sep.join(names[:3]) + more


# ---------------------------------------------------------------------------- sample / info


@app.command()
def sample(
    model: Annotated[str, typer.Argument(help="Model dir, run dir or shipped model name.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="grid.png for one grid, or a folder for one PNG each.")
    ],
    n: Annotated[
        int | None,
        typer.Option(
            help="Number of samples (default 64); with --style-mix, sources per side (default 6)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same pixels.")] = 0,
    class_label: Annotated[
        int | None, typer.Option("--class", help="Class index for a conditional model.")
    ] = None,
    sampler: Annotated[
        str | None, typer.Option(help="Diffusion: ddim, ddpm or dpm-solver++.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Diffusion: sampling steps.")] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Diffusion: classifier-free guidance scale (1: none).")
    ] = None,
    truncation: Annotated[
        float | None,
        typer.Option(help="StyleGAN: truncation psi in [0, 1] toward the average W (1: none)."),
    ] = None,
    style_mix: Annotated[
        bool,
        typer.Option(
            "--style-mix",
            help="StyleGAN: a style-mixing grid to --out grid.png: top row seed S, left column "
            "seed S+1; each cell takes the coarse styles (4x4 and 8x8 layers) of the image above "
            "it and the fine styles of the image left of it.",
        ),
    ] = False,
    mix_layers: Annotated[
        int | None,
        typer.Option(
            help="With --style-mix: style layers taken from the top row (default 4: layers 0-3, "
            "the 4x4 and 8x8 resolutions); the rest come from the left column."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    threads: Threads = None,
) -> None:
    """Generate images from MODEL."""
    from pixelforge.devices import as_device
    from pixelforge.hub import load
    from pixelforge.tasks.generate import provenance, sample_images, save_samples

    set_threads(threads)
    m = load(model, device=as_device(device))
    options = {
        k: v
        for k, v in (
            ("sampler", sampler),
            ("steps", steps),
            ("guidance", guidance),
            ("truncation", truncation),
        )
        if v is not None
    }
    if style_mix or mix_layers is not None:
        from pixelforge.tasks.style_mix import style_mix_grid

        if not style_mix:
            raise ConfigError("--mix-layers goes with --style-mix.")
        if out_path.suffix.lower() != ".png":
            raise ConfigError(
                f"--style-mix writes one grid: --out must end in .png, got '{out_path}'."
            )
        if set(options) - {"truncation"}:
            raise ConfigError("--style-mix takes no --sampler, --steps or --guidance.")
        n = 6 if n is None else n
        images = style_mix_grid(
            m,
            n,
            seed=seed,
            class_label=class_label,
            crossover=mix_layers,
            truncation=1.0 if truncation is None else truncation,
        )
        options["style_mix"] = True
        if mix_layers is not None:
            options["mix_layers"] = mix_layers
    else:
        n = 64 if n is None else n
        images = sample_images(m, n, seed=seed, class_label=class_label, **options)
    command = f"pixelforge sample {model} --n {n} --seed {seed}"
    if class_label is not None:
        command += f" --class {class_label}"
    command += "".join(
        f" --{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in options.items()
    )
    meta = provenance(m, command, seed=seed, n=n, class_label=class_label, **options)
    written = save_samples(images, out_path, meta)
    out().print(
        f"wrote {out_path}" if len(written) == 1 else f"wrote {len(written)} images to {out_path}"
    )


@app.command()
def info(
    path: Annotated[
        Path,
        typer.Argument(help="A PNG made by pixelforge, a model dir, a run dir or a shipped model."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show how an image was made, or what a model or run is."""
    from pixelforge import runs
    from pixelforge.hub import maker_of, read_model_meta, resolve_model_dir, shipped_models
    from pixelforge.io.images import read_provenance

    if path.is_file():
        if path.suffix.lower() in (".gif", ".mp4"):
            raise PixelforgeError(
                f"{path} is a video: pixelforge keeps provenance in the PNGs it writes, and "
                "`nerf render` videos carry none (render the views into a folder for PNGs)."
            )
        doc = read_provenance(path)
        if doc is None:
            raise PixelforgeError(
                f"{path} has no pixelforge provenance (it was not written by pixelforge)."
            )
        made_by = maker_of(doc)
        if made_by is not None:
            doc["made_by"] = made_by
    elif runs.is_run_dir(path):
        latest = runs.latest_checkpoint(path)
        doc = {"run": str(path), "latest_step": latest[0] if latest else None}
        if latest is None:  # before its first checkpoint: what the run trains, from its run.json
            from pixelforge.training.run import read_run

            doc |= read_run(path).to_json()
        else:
            doc["model"] = read_model_meta(latest[1] / runs.MODEL_SUBDIR)
    elif path.is_dir():
        try:
            model_dir = resolve_model_dir(path)
        except ModelLoadError:
            # a folder that holds no model, named as a shipped model (`pixelforge denoise
            # --out denoise/` makes one): the shipped model's card is what was asked for
            if str(path) not in shipped_models():
                raise
            model_dir = shipped_models()[str(path)]
        doc = read_model_meta(model_dir)
    elif str(path) in shipped_models():
        doc = read_model_meta(shipped_models()[str(path)])
    else:
        raise PixelforgeError(f"no such file, folder or shipped model: {path}")
    if as_json:
        out().print_json(json.dumps(doc))
    else:
        table = Table(show_header=False, box=None)
        # a key too long for the terminal (card.scores.sr-x4-real-on-real-degradations...) or a
        # value with no spaces (a SHA-256) goes on over the next lines: cut short with an
        # ellipsis, rows that differ only at their ends could not be told apart
        table.add_column(overflow="fold")
        table.add_column(overflow="fold")
        for key, value in _flatten(doc):
            table.add_row(Text(key, style="bold"), Text(str(value)))
        out().print(table)


def _flatten(doc: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, json.dumps(value) if isinstance(value, list | dict) else value))
    return rows


# ---------------------------------------------------------------------------- models / data / weights


@models_app.command("list")
def models_list() -> None:
    """List the model families and the shipped models."""
    from pixelforge.hub import read_model_meta, shipped_models
    from pixelforge.registry import list_families

    table = Table("family", "what it is")
    for fam in list_families():
        table.add_row(fam.name, fam.summary)
    out().print(table)
    shipped = shipped_models()
    if shipped:
        t2 = Table("shipped model", "family", "about")
        for name, path in shipped.items():
            meta = read_model_meta(path)
            t2.add_row(name, meta["family"], str(meta.get("card", {}).get("summary", "")))
        out().print(t2)


@data_app.command("list")
def data_list() -> None:
    """List the built-in datasets."""
    from pixelforge.data import list_datasets

    table = Table("dataset", "what it is")
    for name, desc in list_datasets():
        table.add_row(name, desc)
    out().print(table)
    out().print(
        "User data: folder:PATH (labels from sub-folders), paired:PATH (pix2pix), unpaired:PATH (CycleGAN)."
    )


@data_app.command("show")
def data_show(
    spec: Annotated[str, typer.Argument(help="Dataset spec.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write a grid of examples to this PNG.")
    ] = None,
    n: Annotated[int, typer.Option(help="Examples in the grid.")] = 64,
    size: Annotated[int, typer.Option(help="Image size for the grid.")] = 32,
) -> None:
    """Describe a dataset (and optionally write a grid of examples)."""
    import dataclasses

    from pixelforge.data import inspect_dataset, open_dataset

    info_ = inspect_dataset(spec)
    table = Table(show_header=False, box=None)
    for key, value in dataclasses.asdict(info_).items():
        table.add_row(Text(key, style="bold"), Text(str(value)))
    out().print(table)
    if out_path is not None:
        import math

        import torch

        from pixelforge.io.images import write_png
        from pixelforge.viz import make_grid

        ds = open_dataset(spec, image_size=size, channels=3 if info_.channels != 1 else 1)
        idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).round().long()  # spread over the set
        batch = ds.get_batch(idx)
        if "image" in batch:
            grid = make_grid((batch["image"] + 1) / 2)
            what = ""
        else:  # two sides: each A beside its B (paired) or beside a B (unpaired)
            a, b = batch["A"], batch["B"]
            a = a.expand(-1, b.shape[1], -1, -1) if a.shape[1] < b.shape[1] else a
            b = b.expand(-1, a.shape[1], -1, -1) if b.shape[1] < a.shape[1] else b
            sides = torch.stack([a, b], dim=1).flatten(0, 1)
            cols = 2 * max(1, round(math.sqrt(len(a) / 2)))
            grid = make_grid((sides + 1) / 2, nrow=cols)
            what = " (A and B side by side)"
        write_png(out_path, grid, {"dataset": spec, "kind": "dataset examples"})
        out().print(f"wrote {out_path}{what}")


@data_app.command("check")
def data_check(spec: Annotated[str, typer.Argument(help="Dataset spec.")]) -> None:
    """Decode every image of a dataset and list the unreadable ones."""
    from pixelforge.data import check_dataset

    report = check_dataset(spec)
    out().print(f"{report.readable} of {report.total} images readable")
    for path, reason in report.unreadable:
        out().print(Text(f"  {path}: {reason}"))
    if report.unreadable:
        raise typer.Exit(1)


@weights_app.command("import")
def weights_import(
    src: Annotated[
        Path, typer.Argument(help="A weight file: a known public one, or your own pickle.")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="The known weights this file is (inception, vgg16, vgg19, lpips-vgg)."),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="For your own pickle: the safetensors file to write."),
    ] = None,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="I trust this file's source (your own pickle).")
    ] = False,
) -> None:
    """Store a known weight file (hash-checked), or convert a trusted pickle to safetensors."""
    if name is not None:
        from pixelforge.features.weights import import_weights

        stored = import_weights(name, src)
        out().print(f"stored {name} weights as {stored}")
        return
    if out_path is None:
        raise ConfigError(
            "give --name for a known weight file, or --out (and --allow-pickle) to convert your own."
        )
    from pixelforge.hub import import_pickled

    digest = import_pickled(src, out_path, allow_pickle=allow_pickle)
    out().print(f"wrote {out_path} (sha256 {digest})")


@weights_app.command("fetch")
def weights_fetch(
    name: Annotated[str, typer.Argument(help="inception, vgg16, vgg19 or lpips-vgg.")],
) -> None:
    """Download a known weight file, check its pinned SHA-256 and convert it to safetensors."""
    from pixelforge.features.weights import fetch

    out().print(f"stored {name} weights as {fetch(name)}")


@weights_app.command("list")
def weights_list() -> None:
    """The known weight files, their pinned hashes and whether they are present."""
    from pixelforge.features.weights import KNOWN_WEIGHTS, find_weights

    table = Table("name", "file", "sha256", "found")
    for key, entry in KNOWN_WEIGHTS.items():
        found = find_weights(key)
        table.add_row(key, entry.files[0], entry.sha256[:16] + "...", str(found) if found else "no")
    out().print(table)


@weights_app.command("train-domain")
def weights_train_domain(
    name: Annotated[str, typer.Argument(help="digits-cnn or shapes-cnn.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for NAME.safetensors and NAME.json.")
    ],
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    steps: Annotated[int, typer.Option(help="Optimizer steps (the shipped recipe: 1200).")] = 1200,
) -> None:
    """Train a domain feature extractor with the shipped one's recipe (the same data and steps:
    its test accuracy, not its exact weights, which vary with the machine's float kernels)."""
    from pixelforge.features.domain import train_domain_extractor

    report = train_domain_extractor(name, out_dir, seed=seed, steps=steps)
    out().print_json(json.dumps(report))


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where the demo writes its results.")
    ] = Path("pixelforge-demo"),
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train again even if a model exists.")
    ] = False,
    threads: Threads = None,
) -> None:
    """Train a class-conditional DCGAN on digits (~2 minutes on 2 CPU cores) and show results."""
    from pixelforge.demo import run_demo

    set_threads(threads)
    report = run_demo(out_dir, retrain=retrain, console=err())
    out().print(f"demo results in {out_dir}/: {', '.join(p.name for p in report)}")


# ---------------------------------------------------------------------------- entry point


def _click_exceptions() -> tuple[tuple[type[Exception], ...], ...]:
    """(exit, usage error, abort) exception classes of the click typer runs on: recent typer
    releases carry their own copy of click (``typer._click``); older ones use click itself."""
    exits: list[type[Exception]] = [typer.Exit]
    errors: list[type[Exception]] = []
    aborts: list[type[Exception]] = [typer.Abort]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException

        errors.append(VendoredClickException)
    except ImportError:
        pass
    try:
        import click

        exits.append(click.exceptions.Exit)
        errors.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(exits), tuple(errors), tuple(aborts)


_EXITS, _USAGE_ERRORS, _ABORTS = _click_exceptions()


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one ``warning:`` line on stderr, without Python's file, line number and
    source line (a missing-weights note, an ignored ICC profile, ... are for the user)."""
    err().print(Text("warning: ", style="yellow") + Text(" ".join(str(message).split())))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (used in-process by the tests)."""
    with warnings.catch_warnings():  # restores Python's warning display afterwards
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    from pixelforge.tasks.generate import running_command

    try:
        with running_command(sys.argv[1:] if argv is None else argv):  # for the provenance
            result = app(args=argv, prog_name="pixelforge", standalone_mode=False)
    except _EXITS as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _USAGE_ERRORS as exc:  # a mistyped option or argument: one line, as other mistakes
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called bare: its help, as before
            exc.show()  # type: ignore[attr-defined]
            return int(getattr(exc, "exit_code", 2))
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message = f"{message.rstrip('.')}; see `{ctx.command_path} --help`."
        _print_error(message)
        return int(getattr(exc, "exit_code", 2))
    except _ABORTS:
        err().print("aborted")
        return 130
    except PixelforgeError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err().print("interrupted")
        return 130
    if result == 130:  # typer's Exit(130) for Ctrl-C (commands that keep work raise Interrupted)
        err().print("interrupted")
    return int(result or 0) if isinstance(result, int) else 0


def _print_error(message: str) -> None:
    """The one ``error:`` line, from the process that reports: under torchrun or accelerate
    launch every process meets the same mistake (work split across processes raises an error
    of one share in all of them), and one line is enough."""
    from pixelforge.tasks.evaluate import is_main_process

    if is_main_process():
        err().print(Text("error: ", style="bold red") + Text(message))


def entry() -> None:
    """Console-script entry point (and ``python -m pixelforge``, which torchrun runs)."""
    code = main()
    _leave_processes()
    sys.exit(code)


def _leave_processes() -> None:
    """Leave the process group a command joined under torchrun or accelerate launch: a process
    that exits still in it may abort in gloo's threads as the interpreter shuts down (exit code
    -6, which the launcher reports as a failure although the work was done)."""
    dist = sys.modules.get("torch.distributed")  # not imported: no group was joined
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
