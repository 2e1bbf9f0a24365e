"""pixelforge's Inception, VGG and LPIPS against pytorch-fid, torch-fidelity, torchvision, lpips.

The reference outputs were made by ``tests/fixtures/features/make_reference.py`` in a separate
environment (see its docstring); here the same seeded random weights and inputs are rebuilt from
``reference.json`` with no reference package installed, and pixelforge's networks must agree.

Agreement measure: ``max |pixelforge - reference| / max |reference|`` over each output (relative
to the output's scale, so it is meaningful for logits and LPIPS values alike), at most 1e-5.
Sums of whole activations are compared by relative difference, also at most 1e-5.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from pixelforge.features.inception import InceptionV3FID
from pixelforge.features.lpips import LPIPS
from pixelforge.features.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG
from pixelforge.features.weights import load_exact, tensors_digest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "features"
TOL = 1e-5


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    return json.loads((FIXTURES / "reference.json").read_text())


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "reference.safetensors")


def random_tensors(network: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The recipe of make_reference.py, rebuilt without it; checked against its digest."""
    g = torch.Generator().manual_seed(network["seed"])
    out = {}
    for key, shape, mean, std, positive in network["entries"]:
        t = torch.randn(shape, generator=g, dtype=torch.float32)
        if positive:
            t = t.abs()
        out[key] = mean + std * t
    assert tensors_digest(out) == network["digest"], "rebuilt weights differ from the reference's"
    return out


def digest(x: torch.Tensor) -> str:
    return hashlib.sha256(
        x.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    ).hexdigest()


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = ours.double().flatten(), theirs.double().flatten()
    assert ours.shape == theirs.shape
    return float((ours - theirs).abs().max() / theirs.abs().max())


def report(name: str, err: float) -> None:
    print(f"{name}: max abs diff / max |ref| = {err:.2e}")
    assert err <= TOL, f"{name} differs from the reference: {err:.2e} > {TOL:.0e}"


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels-last", "contiguous"])
def test_inception_matches_pytorch_fid_and_torch_fidelity(meta, ref, channels_last) -> None:
    net = InceptionV3FID(channels_last=channels_last)
    load_exact(net, random_tensors(meta["networks"]["inception"]), "reference weights")
    spec = meta["inputs"]["inception"]
    g = torch.Generator().manual_seed(spec["seed"])
    u = torch.randint(0, 256, spec["shape"], generator=g, dtype=torch.uint8)
    assert digest(u) == spec["digest"]
    with torch.no_grad():
        # pytorch-fid: x = u / 255, scaled by 2x - 1.
        pool3, logits = net.features_and_logits(u.float() / 255)
        report(
            f"[{'NHWC' if channels_last else 'NCHW'}] pytorch-fid pool3",
            rel_err(pool3, ref["inception/pytorch_fid/pool3"]),
        )
        report(
            "pytorch-fid logits (with fc bias)",
            rel_err(logits + net.fc.bias, ref["inception/pytorch_fid/logits"]),
        )
        # torch-fidelity: (u - 128) / 128 == 2 x - 1 at x = u / 256.
        pool3, logits = net.features_and_logits(u.float() / 256)
        report("torch-fidelity 2048", rel_err(pool3, ref["inception/torch_fidelity/2048"]))
        report(
            "torch-fidelity logits_unbiased",
            rel_err(logits, ref["inception/torch_fidelity/logits_unbiased"]),
        )
        report(
            "torch-fidelity logits",
            rel_err(logits + net.fc.bias, ref["inception/torch_fidelity/logits"]),
        )


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_matches_torchvision(meta, ref, arch) -> None:
    norm = meta["imagenet_normalisation"]
    assert tuple(norm["mean"]) == IMAGENET_MEAN and tuple(norm["std"]) == IMAGENET_STD
    net = VGG(arch)
    load_exact(net, random_tensors(meta["networks"][arch]), "reference weights")
    spec = meta["inputs"]["vgg"]
    x = torch.rand(spec["shape"], generator=torch.Generator().manual_seed(spec["seed"]))
    assert digest(x) == spec["digest"]
    layers = sorted({k.split("/")[1] for k in ref if k.startswith(f"{arch}/relu")})
    with torch.no_grad():
        acts = net.activations(x, layers)
        for name in layers:
            flat = acts[name].reshape(-1)
            step = max(1, flat.numel() // 16384)
            report(f"{arch} {name} (subsample)", rel_err(flat[::step], ref[f"{arch}/{name}/sub"]))
            for stat, value in (
                ("sum", flat.double().sum()),
                ("sumsq", flat.double().pow(2).sum()),
            ):
                theirs = float(ref[f"{arch}/{name}/{stat}"])
                report(f"{arch} {name} {stat}", abs(float(value) - theirs) / abs(theirs))
        report(f"{arch} forward (GAP of {net.last_relu})", rel_err(net(x), ref[f"{arch}/gap"]))


def test_lpips_matches_lpips_package(meta, ref) -> None:
    model = LPIPS.from_tensors(
        random_tensors(meta["networks"]["vgg16"]), random_tensors(meta["networks"]["lpips_lin"])
    )
    spec = meta["inputs"]["lpips"]
    g = torch.Generator().manual_seed(spec["seed"])
    x0 = torch.rand(spec["shape"], generator=g)
    x1 = (x0 + 0.2 * torch.rand(spec["shape"], generator=g)).clamp(0, 1)
    assert digest(torch.cat([x0, x1])) == spec["digest"]
    with torch.no_grad():
        report("LPIPS distance", rel_err(model(x0, x1), ref["lpips/distance"]))
        for i, term in enumerate(model.layer_distances(x0, x1)):
            report(f"LPIPS layer {i}", rel_err(term, ref[f"lpips/layer{i}"]))
        # The same distance from [-1, 1] inputs.
        signed = LPIPS.from_tensors(
            random_tensors(meta["networks"]["vgg16"]),
            random_tensors(meta["networks"]["lpips_lin"]),
            value_range=(-1.0, 1.0),
        )
        report(
            "LPIPS [-1, 1] input", rel_err(signed(2 * x0 - 1, 2 * x1 - 1), ref["lpips/distance"])
        )


def test_preprocess_matches_clean_fid(meta, ref) -> None:
    from pixelforge.features.preprocess import resize_clean, resize_legacy

    spec = meta["inputs"]["resize"]
    g = torch.Generator().manual_seed(spec["seed"])
    u = torch.randint(0, 256, spec["shape"], generator=g, dtype=torch.uint8)
    assert digest(u) == spec["digest"]
    for mode, ours in (("clean", resize_clean(u, 299)), ("legacy_pytorch", resize_legacy(u, 299))):
        flat = ours.reshape(-1)
        step = max(1, flat.numel() // 16384)
        report(f"resize {mode} (subsample)", rel_err(flat[::step], ref[f"resize/{mode}/sub"]))
        theirs = float(ref[f"resize/{mode}/sum"])
        report(f"resize {mode} sum", abs(float(flat.double().sum()) - theirs) / abs(theirs))
