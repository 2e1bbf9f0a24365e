"""Fréchet distance (FID's matrix square root): pixelforge's eigh route against pytorch-fid's
scipy ``sqrtm`` route and torchmetrics' ``eigvals`` route, on the same 2048-d statistics.

Run from the project root::

    .venv/bin/python benchmarks/frechet_speed.py [--n 10000] [--dim 2048] [--repeats 7]
        [--batch 500] [--seed 0] [--pause 0.5] [--max-other-cpu 10] [--json-out PATH]

Two feature sets of ``--n`` x ``--dim`` are drawn as ``randn @ mixing + offset`` with different
mixing matrices (columns scaled by a power law, so the covariance spectra decay as Inception
features' do) and different offsets. The statistics step (``StreamingStats.update`` in batches of
``--batch``, float64) is timed separately for each set, once. Then the distance step alone is
timed for each route on the same float64 mean/covariance, ``--repeats`` times, interleaved (the
order rotates every repeat, with a short pause between calls so one library's idle BLAS threads
do not spin into the next timing):

- ``pixelforge``: :func:`pixelforge.metrics.frechet_distance` (numpy/OpenBLAS ``eigh`` of S1,
  then ``eigvalsh`` of diag(sqrt l) V^T S2 V diag(sqrt l)), input checks included;
- ``pixelforge_torch``: the same algorithm with ``torch.linalg`` (MKL), ``backend="torch"``;
- ``pixelforge_cholesky``: ``method="cholesky"``, the pivoted Cholesky factor of S1 (LAPACK
  ``dpstrf``) instead of its eigendecomposition, then the same ``eigvalsh``;
- ``scipy_sqrtm``: pytorch-fid's / clean-fid's ``calculate_frechet_distance``:
  ``scipy.linalg.sqrtm(sigma1.dot(sigma2))``, the eps-offset retry when the result is not
  finite, the check that the diagonal's imaginary part is below 1e-3, then the real part's trace
  (scipy >= 1.16 deprecates the ``disp=False`` argument those libraries pass; it did not change
  the matrix returned, so it is left out);
- ``torchmetrics``: ``torchmetrics.image.fid._compute_fid`` on float64 tensors (sum of the
  square roots of ``torch.linalg.eigvals(sigma1 @ sigma2)``).

Each call also records the share of all cores that other processes used meanwhile (from
/proc/stat); a call above ``--max-other-cpu`` (default 10%) is reported in ``all_s`` but left out
of ``median_s`` and ``min_s`` (``quiet_calls`` counts the rest; if no call was quiet, every
call counts). Agreement is reported as relative differences between the routes'
values and against a reference computed once from the data without forming S1 S2: with the QR
decompositions Xc_i = Q_i R_i of the centred features, tr sqrt(S1^1/2 S2 S1^1/2) equals the
nuclear norm of R1 R2^T / sqrt((n1 - 1)(n2 - 1)).

This is a benchmark, not a test: it prints one JSON document and asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.linalg
import torch

from machine import busy_cpu_seconds, cpu_model  # benchmarks/machine.py
from pixelforge.metrics import StreamingStats, frechet_distance


def timed(fn: Callable[[], float]) -> tuple[float, float, float | None]:
    """(value, wall seconds, other processes' CPU in percent of the machine) of one call."""
    busy0, own0 = busy_cpu_seconds(), sum(os.times()[:2])
    start = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - start
    busy1, own1 = busy_cpu_seconds(), sum(os.times()[:2])
    other = None
    if busy0 is not None and busy1 is not None:
        other_s = max(0.0, (busy1 - busy0) - (own1 - own0))
        other = 100.0 * other_s / (elapsed * (os.cpu_count() or 1))
    return value, elapsed, other


def make_features(n: int, d: int, seed: int, shift: float) -> torch.Tensor:
    """float32 features n x d: randn @ mixing + offset, with a power-law covariance spectrum."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.arange(1, d + 1, dtype=torch.float32) ** -0.5  # decaying column scales
    mixing = torch.randn(d, d, generator=g) * scale[None, :] * 3.0
    offset = torch.randn(d, generator=g).abs() * 0.5 + shift
    return torch.randn(n, d, generator=g) @ mixing + offset


def scipy_sqrtm_fid(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """pytorch-fid's calculate_frechet_distance (clean-fid's frechet_distance is the same)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Matrix is singular..." is handled below, as they do
        covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def reference_fid(x1: torch.Tensor, x2: torch.Tensor) -> float:
    """FID from the data via QR: tr sqrt(S1^1/2 S2 S1^1/2) = ||R1 R2^T||_* / sqrt((n1-1)(n2-1))."""
    terms = []
    for x in (x1, x2):
        xc = x.double() - x.double().mean(dim=0)
        terms.append((x.double().mean(dim=0), torch.linalg.qr(xc, mode="r").R, x.shape[0]))
    (m1, r1, n1), (m2, r2, n2) = terms
    tr_s1 = float(r1.square().sum()) / (n1 - 1)  # tr(R^T R) = ||R||_F^2
    tr_s2 = float(r2.square().sum()) / (n2 - 1)
    nuclear = float(torch.linalg.svdvals(r1 @ r2.T).sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    diff = m1 - m2
    return float(diff @ diff) + tr_s1 + tr_s2 - 2 * nuclear


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per set")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per route")
    parser.add_argument("--batch", type=int, default=500, help="batch size of the stats step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between timed calls")
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=10.0,
        help="calls during which other processes used more than this %% of the CPU are "
        "reported but left out of the medians",
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    started = datetime.datetime.now(datetime.UTC)
    x1 = make_features(args.n, args.dim, args.seed, shift=0.0)
    x2 = make_features(args.n, args.dim, args.seed + 1, shift=0.1)

    stats_seconds, stats = [], []
    for x in (x1, x2):
        acc = StreamingStats(args.dim)

        def feed(acc: StreamingStats = acc, x: torch.Tensor = x) -> float:
            for batch in x.split(args.batch):
                acc.update(batch)
            return float(acc.n)

        _, seconds, other = timed(feed)
        stats_seconds.append({"seconds": seconds, "other_cpu_pct": other})
        stats.append(acc)
    mu1_t, s1_t, mu2_t, s2_t = stats[0].mean, stats[0].cov, stats[1].mean, stats[1].cov
    mu1, s1, mu2, s2 = (t.numpy() for t in (mu1_t, s1_t, mu2_t, s2_t))

    routes: dict[str, Callable[[], float]] = {
        "pixelforge": lambda: frechet_distance(mu1, s1, mu2, s2),
        "pixelforge_torch": lambda: frechet_distance(mu1_t, s1_t, mu2_t, s2_t, backend="torch"),
        "pixelforge_cholesky": lambda: frechet_distance(mu1, s1, mu2, s2, method="cholesky"),
        "scipy_sqrtm": lambda: scipy_sqrtm_fid(mu1, s1, mu2, s2),
    }
    try:
        from torchmetrics.image.fid import _compute_fid

        routes["torchmetrics"] = lambda: float(_compute_fid(mu1_t, s1_t, mu2_t, s2_t))
    except ImportError:
        pass

    names = list(routes)
    samples: dict[str, list[tuple[float, float, float | None]]] = {k: [] for k in names}
    for rep in range(args.repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate the order
        for name in order:
            time.sleep(args.pause)
            samples[name].append(timed(routes[name]))

    reference = reference_fid(x1, x2)
    values = {k: v[0][0] for k, v in samples.items()}
    base = values["pixelforge"]
    result: dict[str, Any] = {
        "benchmark": "frechet_distance",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "torchmetrics": package_version("torchmetrics"),
        },
        "config": vars(args) | {"json_out": str(args.json_out) if args.json_out else None},
        "stats_step_seconds": {"set1": stats_seconds[0], "set2": stats_seconds[1]},
        "reference_fid_qr": reference,
        "routes": {},
    }

    def quiet(runs: list[tuple[float, float, float | None]]) -> list[float]:
        return [t for _, t, o in runs if o is None or o <= args.max_other_cpu]

    def used(runs: list[tuple[float, float, float | None]]) -> list[float]:
        return quiet(runs) or [t for _, t, _ in runs]  # all calls if none was quiet

    medians = {k: statistics.median(used(v)) for k, v in samples.items()}
    for name, runs in samples.items():
        result["routes"][name] = {
            "median_s": medians[name],
            "min_s": min(used(runs)),
            "quiet_calls": len(quiet(runs)),  # 0: none was quiet, the figures use every call
            "all_s": [round(r[1], 4) for r in runs],
            "all_other_cpu_pct": [None if r[2] is None else round(r[2], 1) for r in runs],
            "value": values[name],
            "values_identical_across_repeats": len({r[0] for r in runs}) == 1,
            "rel_diff_vs_pixelforge": abs(values[name] - base) / abs(base),
            "rel_diff_vs_reference": abs(values[name] - reference) / abs(reference),
        }
    result["speedup_of_pixelforge"] = {
        k: medians[k] / medians["pixelforge"] for k in names if k != "pixelforge"
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
