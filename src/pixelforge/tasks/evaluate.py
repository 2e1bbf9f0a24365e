"""Evaluation over files, datasets and models: features are extracted here, numbers come from
:mod:`pixelforge.metrics`.

Under ``torchrun`` / ``accelerate launch`` each process extracts a contiguous slice of the
batches; statistics and features are then gathered in rank order, so several processes give the
numbers one process gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pixelforge.errors import PixelforgeError
from pixelforge.features import FeatureExtractor, get_extractor
from pixelforge.features.preprocess import prepare
from pixelforge.io.stats import (
    ReferenceStats,
    StatsFileError,
    check_same_protocol,
    load_stats,
    save_stats,
)
from pixelforge.metrics import (
    MetricResult,
    StreamingStats,
    frechet_distance,
    inception_score,
    kid,
    precision_recall,
)
from pixelforge.metrics.result import SMALL_N, protocol_warnings, small_n_warnings
from pixelforge.tasks.sources import Source, content_hash, iter_images, resolve_source

DEFAULT_EXTRACTOR = "inception-v3-fid"


@dataclass
class Extracted:
    """Features of one side of a comparison."""

    stats: StreamingStats
    n: int
    protocol: dict[str, Any]
    features: torch.Tensor | None = None  # N x D, kept when KID or precision/recall need them
    logits: torch.Tensor | None = None  # N x K, kept for the Inception Score
    warnings: list[str] = field(default_factory=list)


def _shard() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def join_processes(device: torch.device) -> torch.device:
    """Under ``torchrun`` / ``accelerate launch``, join the process group, so that each process
    extracts a share of the images and one reports; returns this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (
        dist.is_available() and dist.is_initialized()
    ):
        return device
    from accelerate import PartialState

    state = PartialState(cpu=device.type == "cpu")
    return state.device if device.type != "cpu" else device


def _batches(
    images: Iterator[torch.Tensor], extractor: FeatureExtractor, resize: str, batch_size: int
) -> Iterator[torch.Tensor]:
    """Prepared extractor inputs, ``batch_size`` at a time (folder images arrive one by one)."""
    pending: list[torch.Tensor] = []
    count = 0
    for x in images:
        pending.append(prepare(x, extractor, resize))  # type: ignore[arg-type]
        count += x.shape[0]
        if count >= batch_size:
            yield torch.cat(pending)
            pending, count = [], 0
    if pending:
        yield torch.cat(pending)


def _raise_any(error: PixelforgeError | None) -> None:
    """Raise, in every process, the first error (in rank order) that any process met in its
    share of the work (an unreadable image, two images of different sizes): then every process
    stops at the same point and rank 0 reports it, where the others would otherwise wait for the
    failed one in the next gather. Every process must call it."""
    _, world = _shard()
    if world == 1:
        if error is not None:
            raise error
        return
    errors: list[Any] = [None] * world
    dist.all_gather_object(errors, error)
    for found in errors:
        if found is not None:
            raise found


T = TypeVar("T")
R = TypeVar("R")


def map_shared(fn: Callable[[T], R], items: Sequence[T], *, progress: str | None = None) -> list[R]:
    """``fn`` of every item, in order. Under ``torchrun`` / ``accelerate launch`` each process
    computes a contiguous share and every process gets the whole list, so the results are those
    of one process; an error in any share is raised in every process. ``progress``: the label
    of a progress bar (rank 0's share) on a terminal."""
    from rich.progress import track

    rank, world = _shard()
    start, stop = len(items) * rank // world, len(items) * (rank + 1) // world
    share = items[start:stop]
    if progress is not None and rank == 0:
        share = track(share, description=progress)  # type: ignore[assignment]
    if world == 1:
        return [fn(x) for x in share]
    mine: list[R] = []
    error = None
    try:
        mine = [fn(x) for x in share]
    except PixelforgeError as exc:
        error = exc
    _raise_any(error)
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, mine)
    return [r for part in parts for r in part]


def _gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Rows of every process, concatenated in rank order (on ``t``'s device)."""
    _, world = _shard()
    if world == 1:
        return t
    # NCCL (accelerate's backend on GPUs) exchanges GPU tensors only; gloo, CPU tensors
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    n = torch.tensor([t.shape[0]], dtype=torch.long, device=on)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    width = int(max(s.item() for s in sizes))
    padded = torch.zeros((width, *t.shape[1:]), dtype=t.dtype, device=on)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    rows = torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])
    return rows.to(t.device)


def extract(
    source: Source,
    extractor: FeatureExtractor,
    *,
    resize: str = "clean",
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    gather: bool = True,
    **kw: Any,
) -> Extracted:
    """Features (and statistics) of every image ``source`` yields, split across processes
    (``gather=False``: this process alone does all the work)."""
    if source.kind == "stats":
        raise PixelforgeError(f"{source.spec} holds statistics only; this metric needs images.")
    images = iter_images(
        source,
        channels=extractor.input_channels,
        image_size=extractor.input_size,
        n=n,
        seed=seed,
        batch_size=batch_size,
        device=device,
        shard=_shard() if gather else (0, 1),
    )
    return extract_images(
        images,
        extractor,
        label=source.spec,
        resize=resize,
        total=n,
        batch_size=batch_size,
        device=device,
        gather=gather,
        **kw,
    )


def extract_images(
    images: Iterator[torch.Tensor],
    extractor: FeatureExtractor,
    *,
    label: str = "images",
    resize: str = "clean",
    total: int | None = None,
    keep_features: bool = False,
    keep_logits: bool = False,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
    gather: bool = True,
) -> Extracted:
    """Features of ``images`` (batches in [0, 1]); with ``gather``, every process's share is
    combined in rank order."""
    rank, world = _shard() if gather else (0, 1)
    extractor = extractor.to(device).eval()
    stats = StreamingStats(extractor.feature_dim)
    feats: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    err = Console(stderr=True)  # on a terminal only: piped output stays clean
    bar = (
        Progress(
            TextColumn(f"[bold]features[/] {label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        if progress and rank == 0 and err.is_terminal
        else None
    )
    error = None
    with bar if bar is not None else nullcontext():
        task = bar.add_task("extract", total=total) if bar is not None else None
        with torch.inference_mode():
            try:
                for x in _batches(images, extractor, resize, batch_size):
                    x = x.to(device)
                    f = extractor(x).float().cpu()
                    stats.update(f)
                    if keep_features:
                        feats.append(f)
                    if keep_logits:
                        logits.append(extractor.logits(x).float().cpu())
                    if bar is not None and task is not None:
                        bar.update(task, advance=x.shape[0])
            except PixelforgeError as exc:
                if world == 1:
                    raise
                error = exc
    if world > 1:
        _raise_any(error)
        state = stats.to_state()
        gathered = {k: _gather_rows(v.reshape(1, *v.shape).double()) for k, v in state.items()}
        stats = StreamingStats(extractor.feature_dim)
        for i in range(world):
            stats.merge(StreamingStats.from_state({k: v[i] for k, v in gathered.items()}))
    if stats.n == 0:
        raise PixelforgeError(f"{label} gave no images.")
    protocol = {**extractor.describe(), "resize": resize}
    out = Extracted(stats, stats.n, protocol)
    gather_rows = _gather_rows if world > 1 else (lambda t: t)
    if keep_features:
        out.features = gather_rows(
            torch.cat(feats) if feats else torch.zeros(0, extractor.feature_dim)
        )
    if keep_logits:
        out.logits = gather_rows(torch.cat(logits))
    return out


def _extractor(name: str) -> FeatureExtractor:
    """The extractor ``name``; a missing Inception file also points to the offline extractors."""
    from pixelforge.features.weights import WeightsNotFoundError

    try:
        return get_extractor(name)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{exc} Offline, for the built-in digits or shapes, use --extractor digits-cnn or "
            "--extractor shapes-cnn (numbers not comparable with published FIDs)."
        ) from None


def _preflight(args: tuple[str, ...], n: int | None) -> None:
    """Resolve every side before any work, so a mistake on the second side costs nothing."""
    for arg in args:
        if resolve_source(arg).kind == "model" and n is None:
            raise PixelforgeError(f"sampling {arg} needs --n (how many images to generate).")


def _cached(
    args: tuple[str, ...], extractor: str, resize: str
) -> dict[str, tuple[ReferenceStats, list[str]]]:
    """The sides given as .npz statistics, read once. One made with another extractor or resizing
    is refused here, before the extractor is loaded (an absent Inception file is not the
    problem then)."""
    asked = {"extractor": extractor, "resize": resize}
    cached = {}
    for arg in args:
        source = resolve_source(arg)
        if source.kind != "stats":
            continue
        ref, warnings = load_stats(source.spec)
        made = {k: ref.protocol[k] for k in asked if ref.protocol.get(k, asked[k]) != asked[k]}
        if made:
            diffs = "; ".join(f"{k}: {v!r} vs {asked[k]!r}" for k, v in made.items())
            flags = " ".join(f"--{k} {v}" for k, v in made.items())
            raise StatsFileError(
                f"{arg} and the features asked for were computed with different protocols "
                f"({diffs}): pass {flags} to compare with it."
            )
        cached[arg] = (ref, warnings)
    return cached


def _moments(
    arg: str,
    extractor: FeatureExtractor | None,
    cached: dict[str, tuple[ReferenceStats, list[str]]],
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray, int | None, dict[str, Any], list[str]]:
    """Mean, covariance, count, protocol and warnings of one side: from images, or from an .npz
    (nothing is recomputed for a cached side)."""
    if arg in cached:
        ref, warnings = cached[arg]
        return ref.mu, ref.sigma, (ref.n or None), ref.protocol, warnings
    assert extractor is not None
    ex = extract(resolve_source(arg), extractor, **kw)
    return (
        ex.stats.mean.double().numpy(),
        ex.stats.cov.double().numpy(),
        ex.n,
        ex.protocol,
        ex.warnings,
    )


def compute_fid(
    real: str, fake: str, *, extractor: str = DEFAULT_EXTRACTOR, resize: str = "clean", **kw: Any
) -> MetricResult:
    """FID between two sources (folders, datasets, models with ``n``, or .npz statistics)."""
    _preflight((real, fake), kw.get("n"))
    cached = _cached((real, fake), extractor, resize)
    if len(cached) == 2:  # two cached sides: no features to compute, no extractor to load
        ex, current = None, cached[real][0].protocol
        check_same_protocol(cached[fake][0].protocol, current, f"{real} and {fake}")
    else:
        ex = _extractor(extractor)
        current = {**ex.describe(), "resize": resize}
    mu1, s1, n1, p1, w1 = _moments(real, ex, cached, resize=resize, **kw)
    mu2, s2, n2, p2, w2 = _moments(fake, ex, cached, resize=resize, **kw)
    for p, arg in ((p1, real), (p2, fake)):
        check_same_protocol(p, current, f"{arg} and the features computed now")
    if mu1.shape != mu2.shape:
        raise PixelforgeError(
            f"{real} has {mu1.shape[0]}-d statistics but {fake} has {mu2.shape[0]}-d."
        )
    value = frechet_distance(mu1, s1, mu2, s2)
    protocol = p1 or p2 or current
    notes = [*w1, *w2, *protocol_warnings(protocol)]
    if n1 is not None and n2 is not None:
        notes += small_n_warnings("fid", n1, n2)
    return MetricResult("fid", value, None, n1, n2, protocol, tuple(notes))


def _features(arg: str, ex: FeatureExtractor, **kw: Any) -> Extracted:
    source = resolve_source(arg)
    if source.kind == "stats":
        raise PixelforgeError(
            f"{arg} holds only mean and covariance; KID and precision/recall need images."
        )
    return extract(source, ex, keep_features=True, **kw)


def _fid_of(a: Extracted, b: Extracted) -> MetricResult:
    value = frechet_distance(a.stats.mean, a.stats.cov, b.stats.mean, b.stats.cov)
    notes = (*small_n_warnings("fid", a.n, b.n), *protocol_warnings(a.protocol))
    return MetricResult("fid", value, None, a.n, b.n, a.protocol, notes)


def compute_fid_report(
    real: str, fake: str, *, extractor: str = DEFAULT_EXTRACTOR, resize: str = "clean", **kw: Any
) -> list[MetricResult]:
    """FID, and for small image sets (fewer than 10,000 a side, where FID is biased) KID beside
    it from the same features. A side given as .npz statistics gives FID alone."""
    if "stats" in {resolve_source(a).kind for a in (real, fake)}:
        return [compute_fid(real, fake, extractor=extractor, resize=resize, **kw)]
    _preflight((real, fake), kw.get("n"))
    ex = _extractor(extractor)
    a, b = _features(real, ex, resize=resize, **kw), _features(fake, ex, resize=resize, **kw)
    results = [_fid_of(a, b)]
    if min(a.n, b.n) < SMALL_N:
        assert a.features is not None and b.features is not None
        results.append(kid(a.features, b.features, protocol=a.protocol))
    return results


def compute_kid(
    real: str,
    fake: str,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    resize: str = "clean",
    subsets: int = 100,
    subset_size: int | None = None,
    kid_seed: int = 0,
    **kw: Any,
) -> MetricResult:
    """KID (mean and std over subsets) between two image sources."""
    _preflight((real, fake), kw.get("n"))
    ex = _extractor(extractor)
    a, b = _features(real, ex, resize=resize, **kw), _features(fake, ex, resize=resize, **kw)
    assert a.features is not None and b.features is not None
    return kid(
        a.features,
        b.features,
        subsets=subsets,
        subset_size=subset_size,
        seed=kid_seed,
        protocol=a.protocol,
    )


def compute_pr(
    real: str,
    fake: str,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    resize: str = "clean",
    k: int = 3,
    **kw: Any,
) -> tuple[MetricResult, MetricResult]:
    """Improved precision and recall (k-NN manifolds) between two image sources."""
    _preflight((real, fake), kw.get("n"))
    ex = _extractor(extractor)
    a, b = _features(real, ex, resize=resize, **kw), _features(fake, ex, resize=resize, **kw)
    assert a.features is not None and b.features is not None
    return precision_recall(a.features, b.features, k=k, protocol=a.protocol)


def compute_is(
    fake: str,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    resize: str = "clean",
    splits: int = 10,
    **kw: Any,
) -> MetricResult:
    """Inception Score (mean and std over splits) of one image source."""
    _preflight((fake,), kw.get("n"))
    ex = _extractor(extractor)
    source = resolve_source(fake)
    got = extract(source, ex, resize=resize, keep_logits=True, **kw)
    assert got.logits is not None
    return inception_score(got.logits, splits=splits, protocol=got.protocol)


def make_stats(
    data: str,
    out: str | Path,
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    resize: str = "clean",
    **kw: Any,
) -> ReferenceStats:
    """Cache the mean and covariance of ``data``'s features in an .npz with their protocol."""
    _preflight((data,), kw.get("n"))
    ex = _extractor(extractor)
    source = resolve_source(data)
    got = extract(source, ex, resize=resize, **kw)
    ref = ReferenceStats(
        got.stats.mean.double().numpy(),
        got.stats.cov.double().numpy(),
        got.n,
        got.protocol,
        source.spec,
        content_hash(source, kw.get("n"), kw.get("seed", 0)),
    )
    if _shard()[0] == 0 or not kw.get("gather", True):
        save_stats(out, ref)
    return ref


def is_main_process() -> bool:
    """True on the process that reports results and errors (rank 0, or the only one); before
    the processes of a launcher join their group (a mistake in the command line is met by every
    process alike), the RANK the launcher set tells."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def compute_all(
    real: str, fake: str, *, extractor: str = DEFAULT_EXTRACTOR, resize: str = "clean", **kw: Any
) -> list[MetricResult]:
    """FID, KID and precision/recall, extracting each side's features once."""
    _preflight((real, fake), kw.get("n"))
    ex = _extractor(extractor)
    a, b = _features(real, ex, resize=resize, **kw), _features(fake, ex, resize=resize, **kw)
    assert a.features is not None and b.features is not None
    fid = _fid_of(a, b)
    return [
        fid,
        kid(a.features, b.features, protocol=a.protocol),
        *precision_recall(a.features, b.features, protocol=a.protocol),
    ]


def _image_pairs(a: Path, b: Path) -> list[tuple[Path, Path]]:
    from pixelforge.io.images import list_images

    if a.is_file() and b.is_file():
        return [(a, b)]
    if not a.is_dir() or not b.is_dir():
        raise PixelforgeError(f"give two folders (or two images): {a} and {b}.")
    left = {p.relative_to(a).with_suffix("").as_posix(): p for p in list_images(a)}
    right = {p.relative_to(b).with_suffix("").as_posix(): p for p in list_images(b)}
    if not left or not right:
        raise PixelforgeError(f"no images in {a if not left else b}.")
    missing = sorted(set(left) ^ set(right))
    if missing:
        raise PixelforgeError(
            f"{len(missing)} images have no partner with the same name in the other folder "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); pairs are matched by file name."
        )
    return [(left[k], right[k]) for k in sorted(left)]


def compute_paired(
    metric: str, a: Path, b: Path, *, y_channel: bool = False, crop_border: int = 0
) -> MetricResult:
    """Mean PSNR, SSIM or LPIPS over images of two folders paired by file name (sizes must
    match); under ``torchrun`` each process scores a share of the pairs."""
    from pixelforge.io.images import read_image
    from pixelforge.metrics import psnr, ssim

    fn: Callable[..., torch.Tensor]
    if metric == "lpips":
        from pixelforge.features.lpips import lpips_vgg

        net = lpips_vgg().eval()

        def lpips_pair(x: torch.Tensor, y: torch.Tensor, **_: Any) -> torch.Tensor:
            with torch.inference_mode():
                out: torch.Tensor = net(x.float(), y.float())
            return out

        fn = lpips_pair
    else:
        fn = {"psnr": psnr, "ssim": ssim}[metric]

    def value(pair: tuple[Path, Path]) -> float:
        pa, pb = pair
        x, y = (
            torch.from_numpy(read_image(p)).permute(2, 0, 1)[None].double() / 255.0
            for p in (pa, pb)
        )
        if x.shape != y.shape:
            raise PixelforgeError(
                f"{pa.name}: {tuple(x.shape[2:])} vs {tuple(y.shape[2:])} pixels; paired "
                "images must have the same size."
            )
        return float(fn(x, y, y_channel=y_channel, crop_border=crop_border)[0])

    values = map_shared(value, _image_pairs(a, b))
    arr = np.array(values)
    finite = arr[np.isfinite(arr)]
    std = float(finite.std()) if finite.size > 1 else None
    protocol = {
        "channels": "Y (BT.601)" if y_channel else "RGB",
        "crop_border": crop_border,
        "data_range": 1.0,
    }
    if metric == "ssim":
        protocol["window"] = "gaussian 11x11, sigma 1.5"
    if metric == "lpips":
        protocol = {"network": "LPIPS v0.1, VGG16 trunk", "channels": "RGB"}
    return MetricResult(metric, float(arr.mean()), std, len(values), len(values), protocol)
