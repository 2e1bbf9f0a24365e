"""`pixelforge eval ...`: argument parsing for the metrics (the work is in pixelforge.tasks.evaluate)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pixelforge.errors import ConfigError, PixelforgeError

eval_app = typer.Typer(
    help="Metrics: FID, KID, IS, precision/recall, PSNR, SSIM, LPIPS, memorisation, matting.",
    no_args_is_help=True,
)

Real = Annotated[
    str,
    typer.Argument(help="Folder, dataset (digits:test), model/run dir (with --n) or .npz stats."),
]
Fake = Annotated[
    str, typer.Argument(help="Folder, dataset, model/run dir (with --n) or .npz stats.")
]
Extractor = Annotated[
    str, typer.Option(help="Feature extractor (inception-v3-fid, digits-cnn, shapes-cnn, ...).")
]
Resize = Annotated[
    str,
    typer.Option(help="clean (PIL bicubic, as clean-fid) or legacy (bilinear, as pytorch-fid)."),
]
N = Annotated[
    int | None,
    typer.Option(
        "--n", help="Images to generate from a model side (folders and datasets are used whole)."
    ),
]
Seed = Annotated[int, typer.Option(help="Seed for sampling a model.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BatchSize = Annotated[int, typer.Option(help="Images per forward pass.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _common(n: int | None, seed: int, batch_size: int, device: str, resize: str) -> dict[str, Any]:
    from pixelforge.devices import as_device
    from pixelforge.tasks.evaluate import join_processes

    if resize not in ("clean", "legacy"):
        raise ConfigError(f"--resize must be clean or legacy, got '{resize}'.")
    if n is not None and n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}.")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}.")
    return {
        "n": n,
        "seed": seed,
        "batch_size": batch_size,
        "device": join_processes(as_device(device)),
        "progress": True,
    }


def _report(results: list[Any], as_json: bool) -> None:
    from pixelforge.tasks.evaluate import is_main_process

    if not is_main_process():
        return
    if as_json:
        docs = [r.to_dict() for r in results]
        _console().print_json(json.dumps(docs[0] if len(docs) == 1 else docs))
        return
    table = Table("metric", "value", "std", "n real", "n fake", "extractor", "resize")
    notes: list[str] = []
    for r in results:
        std = "" if r.std is None else f"{r.std:.6g}"
        value = f"{r.value:.6g}" if math.isfinite(r.value) else str(r.value)
        table.add_row(
            r.name,
            value,
            std,
            str(r.n_real or ""),
            str(r.n_fake or ""),
            str(r.protocol.get("extractor", "")),
            str(r.protocol.get("resize", "")),
        )
        notes += [w for w in r.warnings if w not in notes]
    console = _console()
    console.print(table)
    for note in notes:
        console.print(Text(f"note: {note}"))


@eval_app.command("fid")
def fid(
    real: Real,
    fake: Fake,
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """Fréchet Inception Distance between REAL and FAKE (with KID beside it below 10,000 images)."""
    from pixelforge.tasks.evaluate import compute_fid_report

    _report(
        compute_fid_report(
            real,
            fake,
            extractor=extractor,
            resize=resize,
            **_common(n, seed, batch_size, device, resize),
        ),
        as_json,
    )


@eval_app.command("kid")
def kid(
    real: Real,
    fake: Fake,
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    subsets: Annotated[int, typer.Option(help="Subsets.")] = 100,
    subset_size: Annotated[
        int | None, typer.Option(help="Subset size (default min(1000, N)).")
    ] = None,
    kid_seed: Annotated[int, typer.Option(help="Seed of the subset indices.")] = 0,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """Kernel Inception Distance (unbiased MMD, cubic kernel) between REAL and FAKE."""
    from pixelforge.tasks.evaluate import compute_kid

    _report(
        [
            compute_kid(
                real,
                fake,
                extractor=extractor,
                resize=resize,
                subsets=subsets,
                subset_size=subset_size,
                kid_seed=kid_seed,
                **_common(n, seed, batch_size, device, resize),
            )
        ],
        as_json,
    )


@eval_app.command("pr")
def pr(
    real: Real,
    fake: Fake,
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    k: Annotated[int, typer.Option(help="Neighbours for the manifolds.")] = 3,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of FAKE against REAL."""
    from pixelforge.tasks.evaluate import compute_pr

    _report(
        list(
            compute_pr(
                real,
                fake,
                extractor=extractor,
                resize=resize,
                k=k,
                **_common(n, seed, batch_size, device, resize),
            )
        ),
        as_json,
    )


@eval_app.command("is")
def inception_score(
    fake: Fake,
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    splits: Annotated[int, typer.Option(help="Splits.")] = 10,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """Inception Score of FAKE (mean and std over splits)."""
    from pixelforge.tasks.evaluate import compute_is

    _report(
        [
            compute_is(
                fake,
                extractor=extractor,
                resize=resize,
                splits=splits,
                **_common(n, seed, batch_size, device, resize),
            )
        ],
        as_json,
    )


@eval_app.command("all")
def all_metrics(
    real: Real,
    fake: Fake,
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """FID, KID and precision/recall (features extracted once per side)."""
    from pixelforge.tasks.evaluate import compute_all

    _report(
        compute_all(
            real,
            fake,
            extractor=extractor,
            resize=resize,
            **_common(n, seed, batch_size, device, resize),
        ),
        as_json,
    )


@eval_app.command("stats")
def stats(
    data: Annotated[str, typer.Argument(help="Folder, dataset or model (with --n).")],
    out_path: Annotated[
        Path, typer.Option("--out", help="The .npz to write (mu, sigma + protocol).")
    ],
    extractor: Extractor = "inception-v3-fid",
    resize: Resize = "clean",
    n: N = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Cache the feature mean and covariance of DATA (pytorch-fid-readable .npz)."""
    from pixelforge.tasks.evaluate import is_main_process, make_stats

    if out_path.suffix != ".npz":
        raise ConfigError(f"--out must end in .npz, got '{out_path}'.")
    ref = make_stats(
        data,
        out_path,
        extractor=extractor,
        resize=resize,
        **_common(n, seed, batch_size, device, resize),
    )
    if is_main_process():
        _console().print(
            f"wrote {out_path} ({ref.n} images, {ref.mu.shape[0]}-d, {extractor}, resize {resize})"
        )


def _paired(
    metric: str, a: Path, b: Path, y_channel: bool, crop_border: int, as_json: bool
) -> None:
    import torch

    from pixelforge.tasks.evaluate import compute_paired, join_processes

    if crop_border < 0:
        raise ConfigError(f"--crop-border must be >= 0, got {crop_border}.")
    join_processes(torch.device("cpu"))  # under torchrun each process scores a share of pairs
    _report([compute_paired(metric, a, b, y_channel=y_channel, crop_border=crop_border)], as_json)


PathA = Annotated[Path, typer.Argument(help="Folder (or one image) of results.")]
PathB = Annotated[
    Path, typer.Argument(help="Folder (or one image) of references, paired by file name.")
]
YChannel = Annotated[
    bool, typer.Option("--y-channel", help="Compare BT.601 luma only (SR papers).")
]
Crop = Annotated[int, typer.Option(help="Pixels cropped from each border first (SR: the scale).")]


@eval_app.command("psnr")
def psnr(
    a: PathA, b: PathB, y_channel: YChannel = False, crop_border: Crop = 0, as_json: AsJson = False
) -> None:
    """PSNR between images paired by file name (mean over pairs)."""
    _paired("psnr", a, b, y_channel, crop_border, as_json)


@eval_app.command("ssim")
def ssim(
    a: PathA, b: PathB, y_channel: YChannel = False, crop_border: Crop = 0, as_json: AsJson = False
) -> None:
    """SSIM (Gaussian 11x11, sigma 1.5) between images paired by file name (mean over pairs)."""
    _paired("ssim", a, b, y_channel, crop_border, as_json)


@eval_app.command("lpips")
def lpips(a: PathA, b: PathB, as_json: AsJson = False) -> None:
    """LPIPS (VGG, v0.1) between images paired by file name (needs the VGG16 and LPIPS weights)."""
    _paired("lpips", a, b, False, 0, as_json)


@eval_app.command("memorization")
def memorization(
    fake: Annotated[
        str,
        typer.Argument(help="The generator: model dir, run dir, shipped model, or a folder."),
    ],
    train: Annotated[
        str, typer.Option(help="The training images: a dataset (digits) or folder:PATH.")
    ],
    heldout: Annotated[
        str | None,
        typer.Option(
            help="Real images not trained on (default: the test split of digits or shapes)."
        ),
    ] = None,
    n: Annotated[
        int | None, typer.Option("--n", help="Samples to draw from a model (default 1000).")
    ] = None,
    extractor: Annotated[
        str,
        typer.Option(
            help="Feature extractor; auto: digits-cnn / shapes-cnn for those datasets, "
            "else inception-v3-fid."
        ),
    ] = "auto",
    space: Annotated[
        str, typer.Option(help="features (the extractor's) or pixels (32x32 raw pixels).")
    ] = "features",
    pairs: Annotated[int, typer.Option(help="How many suspicious pairs to report.")] = 8,
    pairs_out: Annotated[
        Path | None,
        typer.Option(
            "--pairs-out",
            help="PNG of the pairs: each row a sample and its nearest training image.",
        ),
    ] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    as_json: AsJson = False,
) -> None:
    """Memorisation check: distance of each sample to its nearest training image, against the
    same for held-out real images (verdict: likely copying / possible copying / no sign)."""
    from pixelforge.devices import as_device
    from pixelforge.tasks.memorization import compute_memorization, write_pairs

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}.")
    report = compute_memorization(
        fake,
        train,
        heldout=heldout,
        n=n,
        extractor=extractor,
        space=space,
        seed=seed,
        batch_size=batch_size,
        device=as_device(device),
        k_pairs=pairs,
        progress=not as_json,
    )
    r = report.result
    if pairs_out is not None:
        command = f"pixelforge eval memorization {fake} --train {train}"
        command += f" --heldout {r.protocol['heldout']} --space {space} --seed {seed}"
        if n is not None:
            command += f" --n {n}"
        write_pairs(report, pairs_out, command=command)
    if as_json:
        _console().print_json(json.dumps(r.to_dict()))
        return
    console = _console()
    table = Table("", "generated", "held-out real")
    table.add_row("images", str(r.n_generated), str(r.n_heldout))
    for key, label in (
        ("median", "median distance"),
        ("p05", "5th percentile"),
        ("min", "minimum"),
    ):
        table.add_row(label, f"{r.generated[key]:.4g}", f"{r.heldout[key]:.4g}")
    console.print(
        f"distance to the nearest of {r.n_train} training images "
        f"({r.protocol.get('extractor')}, {r.protocol.get('space')})"
    )
    console.print(table)
    console.print(f"median ratio (generated / held-out): {r.median_ratio:.3g}  (about 1 expected)")
    console.print(
        f"near copies (closer than the held-out 1st percentile, {r.copy_threshold:.4g}): "
        f"{r.copies_fraction:.1%}  (about 1% expected); exact copies: {r.exact_copies_fraction:.1%}"
    )
    console.print(Text(f"verdict: {r.verdict}", style="bold"))
    for w in r.warnings:
        console.print(Text(f"note: {w}"))
    if pairs_out is not None:
        console.print(f"wrote {pairs_out}")


__all__ = ["PixelforgeError", "eval_app"]
