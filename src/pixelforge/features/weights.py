"""Where the public weights of the feature networks come from, checked before they are read.

:data:`KNOWN_WEIGHTS` names every public weight file pixelforge knows: its file names, its full
pinned SHA-256, where to download it and what it is. :func:`load_weights` looks for a file in this
order and takes the first one found:

1. the explicit ``path`` argument (a known pickle, or a safetensors file);
2. ``$PIXELFORGE_WEIGHTS/`` (when set; otherwise pixelforge's own store,
   ``$XDG_CACHE_HOME/pixelforge/weights``, by default ``~/.cache/pixelforge/weights``);
3. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/`` (default
   ``~/.cache/torch/hub/checkpoints``), where pytorch-fid, torchvision and torch-fidelity all
   download to (torch-fidelity through ``torch.hub.load_state_dict_from_url`` as well, under its
   own file name ``weights-inception-2015-12-05-6726825d.pth``);
4. a package that ships the file (the LPIPS layers: ``lpips/weights/v0.1/vgg.pth`` inside an
   installed ``lpips`` package, found without importing it).

In every folder a converted ``<name>.safetensors`` wins over the pickle beside it. A pickle is
hash-checked against its pinned SHA-256 *before* it is unpickled (a file with the right name but
other bytes is refused), read with ``torch.load(weights_only=True)`` via
:func:`pixelforge.hub.read_pickled_weights`, and converted once into the store, so later loads
never unpickle. A converted file carries the pinned hash of its source and a digest of its
tensors in its metadata; both are checked when it is read.

Where the hashes come from: the torch hub naming convention puts the first 8 hex digits of a
file's SHA-256 in its name (``6726825d``, ``397923af``, ``dcbb9e9d``), which
``torch.hub.load_state_dict_from_url(check_hash=True)`` checks. The full hashes below agree with
those prefixes and were taken from public code that pins them after checking downloaded copies
(for example genforce/genforce ``metrics/inception.py`` pins the pytorch-fid file; several other
repositories pin the torch-fidelity copy, torchvision's VGG16 and VGG19 with the same values).
pytorch-fid's ``pt_inception-...`` and torch-fidelity's ``weights-inception-...`` are the same
bytes (same SHA-256). The LPIPS file's hash was computed here from ``lpips`` 0.1.4 from PyPI and
agrees with public pins. No download was possible on the machine that wrote this module, so the
Inception and VGG hashes are not verified against a local copy: a wrong pin would refuse the real
file (safe) rather than accept a wrong one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import tempfile
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from pixelforge.errors import ModelLoadError
from pixelforge.hub import (
    read_pickled_weights,
    read_safetensors,
    sha256_file,
    sniff_format,
    write_safetensors,
)

ENV_VAR = "PIXELFORGE_WEIGHTS"
_META_SOURCE = "pixelforge.source_sha256"  # pinned SHA-256 of the file the tensors came from
_META_DIGEST = "pixelforge.tensors_sha256"  # digest of the tensors (names, dtypes, shapes, bytes)
_META_NAME = "pixelforge.weights"  # the KNOWN_WEIGHTS name


@dataclass(frozen=True)
class KnownWeights:
    """One public weight file: names it goes by, its pinned hash, where to get it, what it is."""

    name: str  # the name used by `pixelforge weights fetch NAME`
    files: tuple[str, ...]  # file names it goes by; the first is the canonical one
    sha256: str  # full SHA-256 of the original file
    urls: tuple[str, ...]  # download locations, tried in order (all serve the same bytes)
    description: str  # what it is, in one line
    sha256_source: str  # where the pinned hash comes from
    keep_prefixes: tuple[str, ...] = ()  # when converting, keep only these keys (empty: all)
    package_file: tuple[str, str] | None = None  # (package, path inside it) that ships the file

    @property
    def converted_name(self) -> str:
        """File name of the converted safetensors copy."""
        return Path(self.files[0]).stem + ".safetensors"

    @property
    def hash_prefix(self) -> str | None:
        """The hash prefix a torch-hub style file name embeds (``name-<hex>.pth``), if any."""
        stem = Path(self.files[0]).stem
        tail = stem.rsplit("-", 1)[-1]
        if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail):
            return tail
        return None


_HUB_PREFIX_NOTE = "full hash from public pins; agrees with the 8-digit torch hub name prefix"

KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "inception": KnownWeights(
        name="inception",
        files=("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth"),
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        urls=(
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth",
        ),
        description="FID Inception v3 (TF inception-2015-12-05 ported by pytorch-fid; the same "
        "file torch-fidelity uses)",
        sha256_source=_HUB_PREFIX_NOTE,
    ),
    "vgg16": KnownWeights(
        name="vgg16",
        files=("vgg16-397923af.pth",),
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        description="torchvision VGG16 ImageNet weights (IMAGENET1K_V1)",
        sha256_source=_HUB_PREFIX_NOTE,
        keep_prefixes=("features.",),
    ),
    "vgg19": KnownWeights(
        name="vgg19",
        files=("vgg19-dcbb9e9d.pth",),
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
        description="torchvision VGG19 ImageNet weights (IMAGENET1K_V1)",
        sha256_source=_HUB_PREFIX_NOTE,
        keep_prefixes=("features.",),
    ),
    "lpips-vgg": KnownWeights(
        name="lpips-vgg",
        files=("lpips-v0.1-vgg.pth",),
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        urls=(
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
            "vgg.pth",
        ),
        description="LPIPS v0.1 linear layers for the VGG trunk (lpips package, "
        "lpips/weights/v0.1/vgg.pth)",
        sha256_source="computed from lpips 0.1.4 (PyPI); agrees with public pins",
        package_file=("lpips", "weights/v0.1/vgg.pth"),
    ),
}


class WeightsNotFoundError(ModelLoadError):
    """No file of a known weight set was found in any place pixelforge looks."""


class WeightsHashError(ModelLoadError):
    """A file carries a known weight file's name (or is given for one) but has other bytes."""


class WeightsDownloadError(ModelLoadError):
    """`fetch` could not download a verified copy."""


@dataclass(frozen=True)
class LoadedWeights:
    """Tensors of a known weight set, with where they were read and whether they are the real ones."""

    name: str  # KNOWN_WEIGHTS name
    tensors: dict[str, torch.Tensor]
    path: Path  # the file that was read
    sha256: str  # the pinned hash when verified, else the SHA-256 of the file read
    verified: bool  # True when the tensors are those of the pinned public file


# --------------------------------------------------------------------------- locations


def weights_dir() -> Path:
    """pixelforge's weight store: ``$PIXELFORGE_WEIGHTS`` or ``~/.cache/pixelforge/weights``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "pixelforge" / "weights"


def torch_hub_checkpoints() -> Path:
    """Where torch hub, pytorch-fid, torchvision and torch-fidelity keep downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (lpips imports
    torchvision), or None."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def candidates(name: str) -> list[Path]:
    """Every file looked at for ``name``, in order (the first that exists is used)."""
    entry = _entry(name)
    found: list[Path] = []
    for d in (weights_dir(), torch_hub_checkpoints()):
        found += [d / f for f in (entry.converted_name, *entry.files)]
    if entry.package_file is not None:
        root = package_dir(entry.package_file[0])
        if root is not None:
            found.append(root / entry.package_file[1])
    return found


def _entry(name: str) -> KnownWeights:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise ModelLoadError(
            f"unknown weights '{name}'. Known: {', '.join(sorted(KNOWN_WEIGHTS))}."
        ) from None


def find_weights(name: str, path: str | Path | None = None) -> Path | None:
    """The file :func:`load_weights` would read for ``name``, or None (nothing is read)."""
    _entry(name)  # unknown names are an error
    if path is not None:
        p = Path(path).expanduser()
        return p if p.is_file() else None
    return next((p for p in candidates(name) if p.is_file()), None)


def _not_found(entry: KnownWeights, path: Path | None) -> WeightsNotFoundError:
    if path is not None:
        return WeightsNotFoundError(f"{entry.name} weights file not found: {path}")
    dirs = [weights_dir(), torch_hub_checkpoints()]
    looked = f"{', '.join((entry.converted_name, *entry.files))} in {dirs[0]} or {dirs[1]}"
    if entry.package_file is not None:
        package, inner = entry.package_file
        looked += f", nor {inner} in an installed {package} package"
    return WeightsNotFoundError(
        f"the {entry.name} weights ({entry.description}) are missing: no {looked}. "
        "Get them with "
        f"`pixelforge weights fetch {entry.name}` (downloads {entry.urls[0]} and checks its "
        f"SHA-256), or copy {entry.files[0]} into ${ENV_VAR} (now {weights_dir()}), or run "
        f"`pixelforge weights import --name {entry.name} FILE` on a copy you have."
    )


# --------------------------------------------------------------------------- reading


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (in sorted name order)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _safetensors_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def _read_converted(entry: KnownWeights, path: Path) -> LoadedWeights:
    tensors = read_safetensors(path)
    meta = _safetensors_metadata(path)
    if meta.get(_META_SOURCE) != entry.sha256:
        # A safetensors file of the user's own (for example made with `pixelforge weights
        # import --allow-pickle`): usable, but not known to be the published weights.
        return LoadedWeights(entry.name, tensors, path, sha256_file(path), verified=False)
    if meta.get(_META_DIGEST) != tensors_digest(tensors):
        raise WeightsHashError(
            f"{path} says it was converted from the {entry.name} weights but its tensors do not "
            f"match the digest it records: it was modified or is damaged. Delete it and run "
            f"`pixelforge weights fetch {entry.name}`."
        )
    return LoadedWeights(entry.name, tensors, path, entry.sha256, verified=True)


def _read_pickle(entry: KnownWeights, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a pickled known file; its hash is checked before anything is unpickled."""
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise WeightsHashError(
            f"{path} is not the {entry.description} file: its SHA-256 is {actual[:16]}..., the "
            f"pinned one {entry.sha256}. Get that file with `pixelforge weights fetch "
            f"{entry.name}`; to use weights of your own, convert them with `pixelforge weights "
            "import FILE --allow-pickle --out NEW.safetensors` and pass that file."
        )
    try:  # the pinned file: its hash was checked just above
        tensors = read_pickled_weights(path, allow_pickle=True)
    except ModelLoadError as exc:
        raise WeightsHashError(
            f"{exc} Get the {entry.name} file again with `pixelforge weights fetch {entry.name}`."
        ) from None
    if entry.keep_prefixes:
        tensors = {k: v for k, v in tensors.items() if k.startswith(entry.keep_prefixes)}
    return tensors


def _convert(entry: KnownWeights, tensors: Mapping[str, torch.Tensor], dest_dir: Path) -> Path:
    dest = dest_dir / entry.converted_name
    meta = {
        _META_NAME: entry.name,
        _META_SOURCE: entry.sha256,
        _META_DIGEST: tensors_digest(tensors),
        "converted_from": entry.files[0],
    }
    write_safetensors(dest, tensors, metadata=meta)
    return dest


def load_weights(name: str, path: str | Path | None = None) -> LoadedWeights:
    """The tensors of the known weight set ``name``, found as the module docstring describes.

    A pickle is converted once into :func:`weights_dir`; if that folder cannot be written, a
    warning says so and the tensors are used from memory.
    """
    entry = _entry(name)
    explicit = Path(path).expanduser() if path is not None else None
    found = find_weights(name, explicit)
    if found is None:
        raise _not_found(entry, explicit)
    with open(found, "rb") as f:
        kind = sniff_format(f.read(16))
    if kind == "safetensors":
        return _read_converted(entry, found)
    if kind not in ("pickle", "torch-zip"):
        raise WeightsHashError(f"{found} is neither a safetensors file nor a PyTorch pickle.")
    tensors = _read_pickle(entry, found)
    try:
        converted = _convert(entry, tensors, weights_dir())
    except OSError as exc:
        warnings.warn(
            f"could not write the converted {entry.name} weights to {weights_dir()} ({exc}); "
            f"using them from {found} this time. Set ${ENV_VAR} to a writable folder so the "
            "pickle is not read again.",
            stacklevel=2,
        )
        return LoadedWeights(entry.name, tensors, found, entry.sha256, verified=True)
    return LoadedWeights(entry.name, tensors, converted, entry.sha256, verified=True)


# --------------------------------------------------------------------------- getting them


def import_weights(name: str, path: str | Path) -> Path:
    """Put the user's copy of the known file ``name`` into the store; returns the stored file.

    ``path`` is the original pickle (its SHA-256 must be the pinned one; it is checked before
    anything is unpickled) or a safetensors file pixelforge converted from it. Anything else is
    refused: weights of your own are converted with ``pixelforge weights import FILE
    --allow-pickle --out NEW.safetensors`` and passed by path.
    """
    entry = _entry(name)
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsNotFoundError(f"{src} does not exist.")
    with open(src, "rb") as f:
        kind = sniff_format(f.read(16))
    store = weights_dir()
    if kind == "safetensors":
        loaded = _read_converted(entry, src)
        if not loaded.verified:
            raise WeightsHashError(
                f"{src} is a safetensors file but not one converted from the {entry.name} file "
                f"(SHA-256 {entry.sha256}). Pass it by path to use it as weights of your own."
            )
        dest = store / entry.converted_name
        if src.resolve() != dest.resolve():
            _convert(entry, loaded.tensors, store)
        return dest
    return _convert(entry, _read_pickle(entry, src), store)


def fetch(name: str, *, timeout: float = 60.0, keep_original: bool = False) -> Path:
    """Download the known file ``name``, check its SHA-256, convert it; returns the stored file.

    Each URL of the entry is tried in order. The download goes to a temporary file in the store,
    whose hash is checked before it is moved into place; a wrong hash deletes it. The pickle is
    then converted to safetensors and (unless ``keep_original``) removed.
    """
    entry = _entry(name)
    store = weights_dir()
    store.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in entry.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.files[0]}.", suffix=".part", dir=store)
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != entry.sha256:
                failures.append(f"{url}: SHA-256 {h.hexdigest()}, expected {entry.sha256}")
                continue
            original = store / entry.files[0]
            os.replace(tmp, original)
            converted = _convert(entry, _read_pickle(entry, original), store)
            if not keep_original:
                original.unlink()
            return converted
        except (OSError, ValueError) as exc:  # URLError is an OSError
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise WeightsDownloadError(
        f"could not download the {entry.name} weights ({'; '.join(failures)}). On a machine "
        f"that can reach it, download {entry.urls[0]}, copy it here and run `pixelforge weights "
        f"import --name {entry.name} FILE`."
    )


# --------------------------------------------------------------------------- into modules


def load_exact(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` into ``module``, every name matching (BatchNorm step counters aside).

    ``num_batches_tracked`` is optional in both directions: files converted from TensorFlow
    graphs may lack it, and it plays no part in inference.
    """
    expected = {k for k in module.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected - set(given)), sorted(set(given) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"{source} does not fit {type(module).__name__} (missing: "
            f"{', '.join(missing[:5]) or 'none'}{' ...' if len(missing) > 5 else ''}; "
            f"unexpected: {', '.join(unexpected[:5]) or 'none'}"
            f"{' ...' if len(unexpected) > 5 else ''})."
        )
    own = module.state_dict()
    for k, v in given.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ModelLoadError(
                f"{source}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}."
            )
    module.load_state_dict(given, strict=False)


def seeded_init(module: torch.nn.Module, seed: int) -> None:
    """Deterministic random weights: He (kaiming) normal convolutions, the same on every machine.

    Convolution and linear weights are drawn from N(0, 2 / fan_out) (torchvision's VGG init, He
    et al. 2015), in module order from one ``torch.Generator`` seeded with ``seed``; biases are
    zero, BatchNorm is the identity (weight 1, bias 0, mean 0, variance 1).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                w = m.weight
                fan_out = w.shape[0] * (w[0][0].numel() if w.ndim > 2 else 1)
                w.copy_(torch.randn(w.shape, generator=g) * (2.0 / fan_out) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.reset_parameters()
