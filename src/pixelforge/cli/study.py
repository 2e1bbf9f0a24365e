"""`pixelforge study ...`: argument parsing for the studies (the work is in pixelforge.study)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pixelforge.cli.options import Threads, set_threads
from pixelforge.errors import ConfigError

study_app = typer.Typer(
    help="Studies: experiments with a fixed protocol (augment: does a generator help a classifier?).",
    no_args_is_help=True,
)


@study_app.callback()
def _study() -> None:
    """Studies: experiments with a fixed protocol, reported as mean and std over seeds."""


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _command(params: dict[str, Any]) -> str:
    parts = ["pixelforge", "study", "augment"]
    for key, value in params.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return shlex.join(parts)


def _table(result: dict[str, Any]) -> Table:
    clf = result["classifier"]
    table = Table(
        "arm",
        "real fraction",
        "mean acc.",
        "std",
        "per seed (%)",
        "seen: real + gen.",
        "pools: real / gen.",
        title=(
            f"{result['data']} -> {result['test_data']}, generator {result['generator']}, "
            f"{clf['steps']} steps x {clf['batch_size']}, {clf['image_size']}x{clf['image_size']}, "
            f"{len(result['seeds'])} seeds"
        ),
    )
    letters = {arm: "abc"[i] if i < 3 else str(i) for i, arm in enumerate(result["arms"])}
    for row in result["summary"]:
        table.add_row(
            f"({letters[row['arm']]}) {row['arm']}",
            f"{row['fraction']:g}",
            f"{100 * row['mean']:.2f}%",
            f"{100 * row['std']:.2f}",
            " ".join(f"{100 * a:.1f}" for a in row["accuracies"]),
            f"{row['images_seen_real']} + {row['images_seen_generated']}",
            f"{row['pool_real']} / {row['pool_generated']}",
        )
    return table


@study_app.command("augment")
def augment(
    data: Annotated[str, typer.Option(help="Labelled training data, e.g. digits.")],
    generator: Annotated[
        str, typer.Option(help="Class-conditional MODEL: model dir, run dir or shipped name.")
    ],
    seeds: Annotated[int, typer.Option(help="Seeds 0..N-1 (mean and std over them).")] = 5,
    fractions: Annotated[
        str, typer.Option(help="Fractions of the real training split, comma-separated.")
    ] = "0.1,1.0",
    steps: Annotated[int, typer.Option(help="Optimisation steps of every classifier.")] = 300,
    batch_size: Annotated[int, typer.Option(help="Images per step (arm b: half and half).")] = 64,
    image_size: Annotated[
        int, typer.Option(help="Classifier input side; real and generated images resized to it.")
    ] = 16,
    test_data: Annotated[
        str | None, typer.Option(help="Held-out split (default: DATA:test).")
    ] = None,
    threads: Threads = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the result JSON here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Train one small classifier on real, real + generated and generated images; test on real."""
    from pixelforge.io.atomic import atomic_write_text
    from pixelforge.study.augment import parse_fractions, run_augment_study
    from pixelforge.study.classifier import ClassifierBudget

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}.")
    set_threads(threads)
    fracs = parse_fractions(fractions)
    budget = ClassifierBudget(steps=steps, batch_size=batch_size)
    err = _err()

    def progress(run: dict[str, Any]) -> None:
        if not as_json:
            err.print(
                f"seed {run['seed']} fraction {run['fraction']:g} {run['arm']}: "
                f"{100 * run['accuracy']:.2f}% ({run['seconds']:.1f} s)"
            )

    result = run_augment_study(
        data,
        generator,
        seeds=seeds,
        fractions=fracs,
        budget=budget,
        image_size=image_size,
        test_data=test_data,
        on_run=progress,
    )
    result["command"] = _command(
        {
            "data": data,
            "generator": generator,
            "seeds": seeds,
            "fractions": fractions,
            "steps": steps,
            "batch_size": batch_size,
            "image_size": image_size,
            "test_data": test_data,
            "threads": threads,
            "out": out_path,
        }
    )
    if out_path is not None:
        atomic_write_text(out_path, json.dumps(result, indent=2) + "\n")
    if as_json:
        _out().print_json(json.dumps(result))
        return
    _out().print(_table(result))
    clf = result["classifier"]
    _out().print(
        f"Every arm: {clf['steps']} steps of {clf['batch_size']} images from the same initial "
        f"weights; arm (b) takes half of each batch from each pool; the generated pool is as "
        "large as the real one, with balanced labels, fresh for each seed. Std over seeds "
        "(ddof=1)."
    )
    _out().print(f"{result['wall_seconds']:.1f} s; command: {result['command']}")
    if out_path is not None:
        _out().print(f"wrote {out_path}")


__all__ = ["study_app"]
