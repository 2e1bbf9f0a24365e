"""Domain feature extractors: small CNN classifiers of pixelforge's built-in datasets.

``digits-cnn`` (grey 32x32 digits, 10 classes) and ``shapes-cnn`` (RGB 32x32 shapes, 6 classes)
are trained by :func:`train_domain_extractor` on the **train** split only and scored on the
held-out split (``digits:test``, ``shapes:test``). Their weights ship inside the package
(``pixelforge/pretrained/features/<name>.safetensors``) next to a JSON card that records the data,
the split sizes, the accuracies, the seed, the steps, the SHA-256 of the weights and the command
that reproduces them (``pixelforge weights train-domain NAME --out DIR``). Loading checks the
weights against the card's SHA-256 and refuses a mismatch.

What they are for, and only for: features for FID/KID (and logits for a domain Inception Score)
on these small domains, where the Inception network of published FIDs sees nothing it knows. Label
such numbers **"domain FID/KID: not comparable with published FIDs"**
(``comparable_to_published`` is False). Do not use these networks for anything else: not as the
judge of generated class accuracy (a separate classifier, trained independently, does that;
judging with the network whose features are also the metric couples the two measurements), not
for guidance, not as a training loss. A generator optimised against a metric's own network games
the metric.

Network (:class:`DomainCNN`): four 3x3 conv blocks (conv, batch norm, ReLU; widths 32, 48, 64,
64; 2x2 max pool after the first three), global average pool, then the feature layer
``Linear(64, 32) + BatchNorm1d(32)``, then ``ReLU + Linear(32, classes)``. The features are the
feature layer's output **before** the ReLU: batch norm makes each dimension roughly zero-mean,
unit-variance on the training data, and with no ReLU no dimension is clipped to a constant zero,
so the covariance FID estimates is full rank and closer to the Gaussian FID assumes.

Why 32 dimensions: FID fits a mean and a ``d x d`` covariance to each image set, and
``digits:test`` has only 360 images. At ``d = 32`` the covariance has 528 free entries (2,080 at
``d = 64``), so the estimate from a few hundred images is much less noisy and less biased, while
32 dimensions are still plenty to separate 10 (or 6) classes and their styles: the classifier head
sees only these 32 numbers and reaches the card's test accuracy through them.

Inputs are float images ``N x C x 32 x 32`` in ``[0, 1]`` (C = 1 for digits, 3 for shapes), the
same pixels ``open_dataset(..., image_size=32)`` gives. The extractors always run in eval mode
(batch norm uses its stored statistics), so a sample's features do not depend on the other images
in its batch.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.data import DataConfig, ImageDataset, augment_batch, open_dataset
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.features.base import FeatureExtractor
from pixelforge.features.registry import register_extractor
from pixelforge.hub import read_safetensors, write_safetensors
from pixelforge.io.atomic import atomic_write_text
from pixelforge.version import __version__

CARD_FORMAT = "pixelforge-domain-extractor"
CARD_FORMAT_VERSION = 1
IMAGE_SIZE = 32
FEATURE_DIM = 32
WIDTHS: tuple[int, ...] = (32, 48, 64, 64)
DEFAULT_STEPS = 1200  # the shipped recipe (its time: docs/benchmarks.md)
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 5e-4
WARMUP_FRACTION = 0.05
TRANSLATE = 2 / IMAGE_SIZE  # augmentation: random whole-pixel shifts of up to 2 pixels
EVAL_BATCH = 256
USAGE_NOTE = (
    "Feature extractor for domain FID/KID (and logits for a domain Inception Score) only. "
    "Label numbers computed with it 'domain FID/KID: not comparable with published FIDs'. "
    "Do not use it for anything else: not as the judge of generated class accuracy (a separate, "
    "independently trained classifier does that), not for guidance, not as a training loss."
)
NOT_COMPARABLE = "domain FID/KID: not comparable with published FIDs"


@dataclass(frozen=True)
class DomainSpec:
    """One domain extractor: the built-in dataset it is trained and tested on."""

    name: str  # registry name, e.g. "digits-cnn"
    train_data: str  # dataset spec of the training split
    test_data: str  # dataset spec of the held-out split (scored, never trained on)
    channels: int  # input channels: 1 grey, 3 RGB
    num_classes: int  # classifier outputs
    summary: str  # one line for `list_extractors`


DOMAINS: dict[str, DomainSpec] = {
    s.name: s
    for s in (
        DomainSpec("digits-cnn", "digits", "digits:test", 1, 10,
                   "small CNN trained on built-in digits (32x32 grey, 32-d features): domain "
                   "FID/KID, not comparable with published FIDs"),
        DomainSpec("shapes-cnn", "shapes", "shapes:test", 3, 6,
                   "small CNN trained on built-in shapes (32x32 RGB, 32-d features): domain "
                   "FID/KID, not comparable with published FIDs"),
    )
}  # fmt: skip


def _spec(name: str) -> DomainSpec:
    if name not in DOMAINS:
        raise ConfigError(f"unknown domain extractor '{name}'. Known: {', '.join(DOMAINS)}.")
    return DOMAINS[name]


# --------------------------------------------------------------------------- network


class DomainCNN(nn.Module):
    """Conv blocks, global average pool, a ``feature_dim`` feature layer and a linear head."""

    def __init__(
        self,
        in_channels: int,  # 1 grey or 3 RGB
        num_classes: int,  # classifier outputs
        widths: tuple[int, ...] = WIDTHS,  # channels of each conv block
        feature_dim: int = FEATURE_DIM,  # length of the feature vector
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.widths = tuple(widths)
        self.feature_dim = feature_dim
        blocks: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            blocks += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                blocks.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*blocks)
        self.feature = nn.Sequential(
            nn.Linear(c, feature_dim, bias=False), nn.BatchNorm1d(feature_dim)
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images in ``[-1, 1]`` -> features (the feature layer before its ReLU)."""
        return self.feature(self.body(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images in ``[-1, 1]`` -> class logits."""
        return self.head(F.relu(self.features(x)))


# --------------------------------------------------------------------------- extractor


class DomainExtractor(FeatureExtractor):
    """A trained :class:`DomainCNN` as a frozen feature extractor (always in eval mode)."""

    comparable_to_published = False

    def __init__(self, net: DomainCNN, *, name: str, weights_sha256: str, card: dict[str, Any]):
        super().__init__()
        self.net = net
        self.name = name
        self.weights_sha256 = weights_sha256
        self.input_size = IMAGE_SIZE
        self.input_channels = net.in_channels
        self.feature_dim = net.feature_dim
        self.num_classes = net.num_classes
        self.card = card
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> DomainExtractor:
        """A measuring instrument stays in eval mode: batch norm always uses its stored statistics."""
        return super().train(False)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        want = (self.input_channels, self.input_size, self.input_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(
                f"{self.name} takes images N x {want[0]} x {want[1]} x {want[2]} in [0, 1], got "
                f"{tuple(images.shape)}; resize with pixelforge.features.preprocess first."
            )
        return images.to(torch.float32) * 2.0 - 1.0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``N x C x 32 x 32`` in ``[0, 1]`` -> float32 features ``N x feature_dim``."""
        with torch.no_grad():
            return self.net.features(self._check(images)).float()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``N x C x 32 x 32`` in ``[0, 1]`` -> class logits ``N x num_classes``."""
        with torch.no_grad():
            return self.net(self._check(images)).float()

    def describe(self) -> dict[str, object]:
        """The protocol fields, plus the label every number computed with it must carry."""
        return {**super().describe(), "note": NOT_COMPARABLE}


def shipped_weights_dir() -> Path:
    """The folder of the weights and cards shipped with pixelforge."""
    return Path(str(resources.files("pixelforge").joinpath("pretrained", "features")))


def read_card(name: str, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The JSON card of extractor ``name`` in ``weights_dir`` (default: the shipped one)."""
    _spec(name)
    folder = Path(weights_dir) if weights_dir is not None else shipped_weights_dir()
    path = folder / f"{name}.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"no card for '{name}' in {folder} ({path.name} is missing). Train one with: "
            f"pixelforge weights train-domain {name} --out {folder}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelLoadError(f"{path} is not a pixelforge domain-extractor card.")
    version = card.get("format_version")
    if not isinstance(version, int):
        raise ModelLoadError(f"{path} has no format_version.")
    if version > CARD_FORMAT_VERSION:
        raise ModelLoadError(f"{path} was written by a newer pixelforge; upgrade to load it.")
    for key in ("name", "sha256", "weights_file", "architecture"):
        if key not in card:
            raise ModelLoadError(f"{path} lacks the '{key}' entry.")
    if card["name"] != name:
        raise ModelLoadError(f"{path} describes '{card['name']}', not '{name}'.")
    return card


def load_domain_extractor(name: str, weights_dir: str | Path | None = None) -> DomainExtractor:
    """Load extractor ``name`` from ``weights_dir`` (default: the weights shipped with pixelforge).

    The weights' SHA-256 is checked against the card before they are parsed; a mismatch raises
    :class:`ModelLoadError`.
    """
    folder = Path(weights_dir) if weights_dir is not None else shipped_weights_dir()
    card = read_card(name, folder)
    tensors = read_safetensors(folder / card["weights_file"], expected_sha256=card["sha256"])
    arch = card["architecture"]
    spec = DOMAINS[name]
    want = {"in_channels": spec.channels, "num_classes": spec.num_classes}
    if not isinstance(arch, dict) or any(arch.get(k) != v for k, v in want.items()):
        raise ModelLoadError(
            f"{folder / (name + '.json')}: '{name}' takes {spec.channels}-channel images and has "
            f"{spec.num_classes} classes; the card's architecture does not."
        )
    try:
        net = DomainCNN(
            int(arch["in_channels"]), int(arch["num_classes"]),
            tuple(int(w) for w in arch["widths"]), int(arch["feature_dim"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{folder / (name + '.json')}: bad architecture entry ({exc})."
        ) from None
    expected = set(net.state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"{folder / card['weights_file']} does not fit its card's architecture (missing: "
            f"{', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})."
        )
    net.load_state_dict(tensors, strict=True)
    return DomainExtractor(net, name=name, weights_sha256=card["sha256"], card=card)


def digits_cnn(weights_dir: str | Path | None = None) -> DomainExtractor:
    """``digits-cnn``: 32-d features of 32x32 grey digits (shipped weights unless ``weights_dir``)."""
    return load_domain_extractor("digits-cnn", weights_dir)


def shapes_cnn(weights_dir: str | Path | None = None) -> DomainExtractor:
    """``shapes-cnn``: 32-d features of 32x32 RGB shapes (shipped weights unless ``weights_dir``)."""
    return load_domain_extractor("shapes-cnn", weights_dir)


# --------------------------------------------------------------------------- evaluation


def open_domain_data(name: str, split: str = "test") -> ImageDataset:
    """The ``train`` or ``test`` split an extractor is trained or scored on, at 32x32."""
    spec = _spec(name)
    data = {"train": spec.train_data, "test": spec.test_data}.get(split)
    if data is None:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}.")
    return open_dataset(data, image_size=IMAGE_SIZE, channels=spec.channels)


def classification_accuracy(extractor: FeatureExtractor, dataset: ImageDataset) -> float:
    """Fraction of ``dataset`` (labelled, at the extractor's size) that ``extractor`` classifies right."""
    if dataset.labels is None:
        raise ValueError(f"{dataset.info.spec} has no labels")
    correct = 0
    for start in range(0, len(dataset), EVAL_BATCH):
        batch = dataset.get_batch(torch.arange(start, min(start + EVAL_BATCH, len(dataset))))
        pred = extractor.logits((batch["image"] + 1.0) / 2.0).argmax(dim=1)
        correct += int((pred == batch["label"]).sum())
    return correct / len(dataset)


# --------------------------------------------------------------------------- training


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers (SeedSequence mixing, as the trainer does)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def _lr_at(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warm = max(1, round(WARMUP_FRACTION * steps))
    if step < warm:
        return LEARNING_RATE * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return LEARNING_RATE * 0.5 * (1.0 + math.cos(math.pi * t))


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one torch thread, then restore the caller's setting.

    Float sums are reduced in a different order with more threads, so the weights would depend on
    the caller's thread count; on one thread they are bit-identical from run to run (same torch
    build, same kind of CPU).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _progress(enabled: bool, total: int, what: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)  # on a terminal only: stdout holds the JSON report alone
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), transient=True,
        console=err, disable=not err.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=total, loss="")
        yield lambda step, loss: bar.update(task, completed=step, loss=f"loss {loss:.3f}")


def reproduce_command(name: str, seed: int = 0, steps: int = DEFAULT_STEPS) -> str:
    """The command line that trains extractor ``name`` with this seed and step count."""
    cmd = f"pixelforge weights train-domain {name} --out DIR"
    if seed != 0:
        cmd += f" --seed {seed}"
    if steps != DEFAULT_STEPS:
        cmd += f" --steps {steps}"
    return cmd


def _fit(
    spec: DomainSpec, train_set: ImageDataset, *, seed: int, steps: int, progress: bool
) -> tuple[DomainCNN, float, float]:
    """The training loop: the network (in eval mode), wall seconds and CPU seconds it took."""
    assert train_set.labels is not None
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.random.fork_rng(devices=[]):  # initialise from the seed, leave global state alone
        torch.manual_seed(_seed(seed, 0))
        net = DomainCNN(spec.channels, spec.num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(_seed(seed, 1))  # data order and augmentation
    aug = DataConfig(translate=TRANSLATE)
    n = len(train_set)
    batch_size = min(BATCH_SIZE, n)
    order, pos = torch.randperm(n, generator=gen), 0
    net.train()
    with _progress(progress, steps, f"training {spec.name}") as update:
        for step in range(steps):
            if pos + batch_size > n:  # a new epoch: a new permutation (the tail is dropped)
                order, pos = torch.randperm(n, generator=gen), 0
            batch = train_set.get_batch(order[pos : pos + batch_size])
            pos += batch_size
            x = augment_batch(batch["image"], gen, aug, global_batch=batch_size, offset=0)
            loss = F.cross_entropy(net(x), batch["label"])
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if update is not None and (step % 10 == 0 or step == steps - 1):
                update(step + 1, loss.item())
    net.eval()
    return net, time.perf_counter() - t0, time.process_time() - c0


def train_domain_extractor(
    name: str,
    out_dir: Path,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    progress: bool = True,
) -> dict[str, Any]:
    """Train extractor ``name`` on its train split; write ``<name>.safetensors`` and ``<name>.json``.

    Recipe: batch 64 drawn from a fresh permutation of the train split each epoch, random
    whole-pixel shifts of up to 2 pixels (reflected border, :func:`pixelforge.data.augment_batch`),
    cross-entropy, AdamW (lr 3e-3, weight decay 5e-4, 5% linear warm-up then cosine decay).
    Initialisation, data order and augmentation come from ``seed``, and training runs on one
    torch thread (the caller's setting is restored after), so the same seed and steps give
    bit-identical weights with the same torch build on the same kind of CPU, whatever the
    caller's thread count. The global random state is left untouched. The held-out split is only
    scored, never trained on.

    Both files are written atomically, weights first: an interrupted run leaves either the old
    pair or a card whose hash refuses the new weights, never a silently mismatched pair.
    Returns a report: accuracies, split sizes, steps, seed, wall and CPU seconds of the training
    loop, sha256 and the paths written.
    """
    spec = _spec(name)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a whole number >= 1, got {steps!r}.")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}.")
    out = Path(out_dir)
    train_set = open_domain_data(name, "train")
    test_set = open_domain_data(name, "test")
    with _one_thread():
        net, seconds, cpu_seconds = _fit(spec, train_set, seed=seed, steps=steps, progress=progress)

    out.mkdir(parents=True, exist_ok=True)
    weights_file = f"{name}.safetensors"
    # One metadata key only: safetensors writes its metadata map in no fixed order, and the
    # bytes (hence the SHA-256) must be the same on every run.
    metadata = {"pixelforge": f"{CARD_FORMAT} {name}"}
    digest = write_safetensors(out / weights_file, net.state_dict(), metadata=metadata)
    extractor = DomainExtractor(net, name=name, weights_sha256=digest, card={})
    train_acc = classification_accuracy(extractor, train_set)
    test_acc = classification_accuracy(extractor, test_set)
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "name": name,
        "summary": spec.summary,
        "usage": USAGE_NOTE,
        "label_numbers_as": NOT_COMPARABLE,
        "comparable_to_published": False,
        "weights_file": weights_file,
        "sha256": digest,
        "dataset": {
            "train": spec.train_data,
            "test": spec.test_data,
            "train_size": len(train_set),
            "test_size": len(test_set),
            "image_size": IMAGE_SIZE,
            "channels": spec.channels,
            "num_classes": spec.num_classes,
            "class_names": train_set.info.class_names,
        },
        "architecture": {
            "network": "DomainCNN",
            "in_channels": spec.channels,
            "num_classes": spec.num_classes,
            "widths": list(net.widths),
            "feature_dim": net.feature_dim,
            "features": "feature layer Linear+BatchNorm1d output, before its ReLU; eval mode",
            "input": "N x C x 32 x 32 float in [0, 1]",
        },
        "feature_dim": net.feature_dim,
        "train_accuracy": round(train_acc, 6),
        "test_accuracy": round(test_acc, 6),
        "recipe": {
            "seed": seed,
            "steps": steps,
            "batch_size": BATCH_SIZE,
            "optimizer": f"AdamW lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}",
            "schedule": f"linear warm-up over {WARMUP_FRACTION:.0%} of steps, then cosine to 0",
            "augmentation": "random whole-pixel shifts of up to 2 pixels, reflected border",
            "trained_on": "train split only; the test split is only scored",
        },
        "seed": seed,
        "steps": steps,
        "reproduce": reproduce_command(name, seed, steps),
        "train_seconds": round(seconds, 1),  # wall clock of the loop; depends on the machine
        "train_cpu_seconds": round(cpu_seconds, 1),
        "trained_with": {
            "pixelforge": __version__,
            "torch": torch.__version__,
            "torch_threads": 1,  # training always runs on one thread (see _one_thread)
            "python": platform.python_version(),
        },
    }
    atomic_write_text(out / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return {
        "name": name,
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "train_size": len(train_set),
        "test_size": len(test_set),
        "steps": steps,
        "seed": seed,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "sha256": digest,
        "weights": str(out / weights_file),
        "card": str(out / f"{name}.json"),
    }


register_extractor("digits-cnn", digits_cnn, DOMAINS["digits-cnn"].summary)
register_extractor("shapes-cnn", shapes_cnn, DOMAINS["shapes-cnn"].summary)
