"""Inception feature-extraction throughput: pixelforge's FID Inception against torch-fidelity's.

Run from the project root, with a second virtual environment that has the reference packages
(the one ``tests/fixtures/features/make_reference.py`` describes)::

    .venv/bin/python benchmarks/inception_throughput.py --ref-python /tmp/refvenv/bin/python \\
        [--batch 16] [--rounds 5] [--iters 2] [--threads 2] [--warmup 1] [--json-out PATH]

Both sides build the FID Inception with the SAME seeded random weights (the Inception recipe of
``tests/fixtures/features/reference.json``, rebuilt and checked against its digest; published
weights cannot be downloaded here and do not change the speed). This process times pixelforge;
a worker process started with ``--ref-python`` (this same file with ``--worker``, which imports
neither pixelforge nor anything outside the reference environment) times torch-fidelity's
``FeatureExtractorInceptionV3`` (``"2048"`` features, uint8 input as it requires, so its cost
includes its uint8 -> float conversion and its TF1-style resize, an identity at 299 x 299) and,
for a like-for-like network, pytorch-fid's ``InceptionV3([3], resize_input=False)`` on float
input. Only one side runs at a time: the other waits on a pipe. Each round times ``--iters``
batches of ``--batch`` 299 x 299 images per configuration, the configurations in an order that
rotates from round to round, so drift in machine speed hits all of them alike. ``--warmup``
untimed batches per configuration come first.

pixelforge configurations: fp32 with channels-last (NHWC) weights and activations, the
default; fp32 contiguous (NCHW, ``InceptionV3FID(channels_last=False)``); bf16 autocast
(``torch.autocast("cpu", torch.bfloat16)``) on each. The input is the same contiguous float
batch for all (the channels-last network converts it itself). For the bf16 ones the
script also reports the largest relative deviation of their pool3 features from fp32.

Each timed span records ``other_cpu_pct``, the share of all cores that other processes used
meanwhile (from /proc/stat, less the timing process's own CPU time); a span above
``--max-other-cpu`` is reported but left out of the medians. Before each round the script waits
(up to ``--max-wait`` seconds in all) for a second in which other processes stay under that
share, and it runs rounds until every configuration has ``--rounds`` kept spans (at most
``--max-rounds`` rounds). Reported per configuration: images/s per round and their median over
the spans kept. A benchmark, not a test: it prints one JSON
document and asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from machine import busy_cpu_seconds, cpu_model  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "tests" / "fixtures" / "features" / "reference.json"
SEED = 1234


# --------------------------------------------------------------------------- shared helpers


def random_inception_state() -> dict[str, torch.Tensor]:
    """The reference fixture's random Inception state dict, checked against its digest."""
    net = json.loads(RECIPE.read_text())["networks"]["inception"]
    g = torch.Generator().manual_seed(net["seed"])
    out: dict[str, torch.Tensor] = {}
    for key, shape, mean, std, positive in net["entries"]:
        t = torch.randn(shape, generator=g, dtype=torch.float32)
        out[key] = mean + std * (t.abs() if positive else t)
    h = hashlib.sha256()
    for key in sorted(out):
        t = out[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if h.hexdigest() != net["digest"]:
        raise SystemExit("rebuilt Inception weights differ from the fixture's digest")
    return out


def images(batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(SEED)
    return torch.rand(batch, 3, 299, 299, generator=g)


def timed(fn: Any, iters: int) -> dict[str, float | None]:
    """Run ``fn`` ``iters`` times: seconds, and other processes' share of the machine (%)."""
    busy0, t0 = busy_cpu_seconds(), os.times()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    elapsed = time.perf_counter() - start
    busy1, t1 = busy_cpu_seconds(), os.times()
    other = None
    if busy0 is not None and busy1 is not None:
        own = (t1.user + t1.system) - (t0.user + t0.system)
        other_s = max(0.0, (busy1 - busy0) - own)
        other = 100.0 * other_s / (elapsed * (os.cpu_count() or 1))
    return {"seconds": elapsed, "other_cpu_pct": other}


# --------------------------------------------------------------------------- reference worker


def worker(batch: int, threads: int, warmup: int) -> None:
    """Runs in the reference environment: serves timing requests on stdin/stdout."""
    import importlib.metadata

    import pytorch_fid.inception as pfi
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.set_num_threads(threads)
    state = random_inception_state()
    tmp = Path(f"/tmp/inception-throughput-{os.getpid()}.pth")
    torch.save(state, tmp)
    try:
        tfe = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(tmp)
        )
    finally:
        tmp.unlink()
    pfi.load_state_dict_from_url = lambda *a, **k: dict(state)
    pfid = pfi.InceptionV3([3], resize_input=False, normalize_input=True).eval()
    x = images(batch)
    u = (x * 255).round().to(torch.uint8)
    configs = {
        "torch-fidelity fp32": lambda: tfe(u),
        "pytorch-fid fp32": lambda: pfid(x),
    }
    with torch.inference_mode():
        for fn in configs.values():
            for _ in range(warmup):
                fn()
        versions = {
            k: importlib.metadata.version(k) for k in ("torch", "torch-fidelity", "pytorch-fid")
        }
        print(json.dumps({"ready": list(configs), "versions": versions}), flush=True)
        for line in sys.stdin:
            req = json.loads(line)
            print(json.dumps(timed(configs[req["config"]], req["iters"])), flush=True)


# --------------------------------------------------------------------------- pixelforge side


def pixelforge_configs(batch: int) -> tuple[dict[str, Any], dict[str, float]]:
    from pixelforge.features.inception import InceptionV3FID
    from pixelforge.features.weights import load_exact

    state = random_inception_state()
    net = InceptionV3FID(channels_last=False)
    load_exact(net, state, "benchmark weights")
    net_cl = InceptionV3FID()  # the default: channels-last
    load_exact(net_cl, state, "benchmark weights")
    x = images(batch)

    def bf16(model: InceptionV3FID, inp: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(inp)

    configs = {
        "pixelforge fp32 contiguous (NCHW)": lambda: net(x),
        "pixelforge fp32 channels-last (default)": lambda: net_cl(x),
        "pixelforge bf16 autocast NCHW": lambda: bf16(net, x),
        "pixelforge bf16 autocast channels-last": lambda: bf16(net_cl, x),
    }
    with torch.inference_mode():
        ref = net(x).double()
        deviation = {}
        for name, fn in configs.items():
            out = fn().double()
            deviation[name] = float((out - ref).abs().max() / ref.abs().max())
    return configs, deviation


def wait_for_quiet(max_other_cpu: float, budget_s: float) -> float:
    """Sleep until other processes use at most ``max_other_cpu`` % of the machine over one
    second (this process idles meanwhile), or ``budget_s`` runs out; returns the time waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s:
        busy0 = busy_cpu_seconds()
        time.sleep(1.0)
        busy1 = busy_cpu_seconds()
        if busy0 is None or busy1 is None:
            break
        if 100.0 * (busy1 - busy0) / (os.cpu_count() or 1) <= max_other_cpu:
            break
        time.sleep(4.0)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--ref-python", default="/tmp/refvenv/bin/python")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=2, help="batches per configuration per round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--max-other-cpu", type=float, default=5.0)
    p.add_argument("--max-rounds", type=int, default=40, help="give up after this many rounds")
    p.add_argument("--max-wait", type=float, default=1800.0, help="seconds to wait for quiet")
    p.add_argument("--json-out", type=Path)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.batch, args.threads, args.warmup)
        return

    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": ""}
    proc = subprocess.Popen(
        [args.ref_python, str(Path(__file__).resolve()), "--worker", "--batch", str(args.batch),
         "--threads", str(args.threads), "--warmup", str(args.warmup)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    hello = json.loads(proc.stdout.readline())
    ours, deviation = pixelforge_configs(args.batch)
    with torch.inference_mode():
        for fn in ours.values():
            for _ in range(args.warmup):
                fn()

    def run(name: str) -> dict[str, float | None]:
        if name in ours:
            with torch.inference_mode():
                return timed(ours[name], args.iters)
        proc.stdin.write(json.dumps({"config": name, "iters": args.iters}) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

    names = [*ours, *hello["ready"]]
    rounds: list[dict[str, dict[str, float | None]]] = []
    waited = 0.0

    def clean(name: str) -> int:
        return sum(
            1
            for rd in rounds
            if rd[name]["other_cpu_pct"] is None
            or float(rd[name]["other_cpu_pct"] or 0) <= args.max_other_cpu
        )

    r = 0
    while r < args.max_rounds and min(clean(n) for n in names) < args.rounds:
        waited += wait_for_quiet(args.max_other_cpu, args.max_wait - waited)
        order = names[r % len(names) :] + names[: r % len(names)]
        if r % 2:
            order.reverse()
        rounds.append({name: run(name) for name in order})
        r += 1
    proc.stdin.close()
    proc.wait(timeout=60)

    n_images = args.batch * args.iters
    results: dict[str, Any] = {}
    for name in names:
        per_round = [
            {
                "images_per_s": n_images / float(rd[name]["seconds"] or 1),
                "other_cpu_pct": rd[name]["other_cpu_pct"],
            }
            for rd in rounds
        ]
        kept = [
            x["images_per_s"]
            for x in per_round
            if x["other_cpu_pct"] is None or x["other_cpu_pct"] <= args.max_other_cpu
        ]
        results[name] = {
            "median_images_per_s": statistics.median(kept) if kept else None,
            "rounds_used": len(kept),
            "median_all_rounds": statistics.median(x["images_per_s"] for x in per_round),
            "rounds": per_round,
        }
        if name in deviation:
            results[name]["max_rel_deviation_from_fp32"] = deviation[name]
    doc = {
        "benchmark": "inception_throughput",
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "pixelforge_torch": torch.__version__,
        "reference_versions": hello["versions"],
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "json_out")},
        "rounds_run": len(rounds),
        "seconds_waited_for_quiet": round(waited, 1),
        "results": results,
    }
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
