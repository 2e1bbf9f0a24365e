"""Model directories: ``config.json`` + ``model.safetensors``, saved and loaded safely.

A model directory describes itself: ``config.json`` names the family, the format version, the
pixelforge version that wrote it, the full model config and the SHA-256 of the weights, so
:func:`load` rebuilds the model with no extra flags.

Weights are read only from safetensors files, recognised by their bytes rather than their name:
a pickle renamed ``.safetensors`` is refused before anything in it is read. A pickled weight file
is unpickled only (a) when it is a known public file whose pinned SHA-256 is checked first, or
(b) when the user asks for it with ``--allow-pickle``; both use ``torch.load(weights_only=True)``
and convert the result to safetensors once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import struct
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes

from pixelforge import runs
from pixelforge.config import from_dict, to_dict
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.io.atomic import atomic_write_bytes, atomic_write_text
from pixelforge.version import __version__

FORMAT = "pixelforge-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


# --------------------------------------------------------------------------- weight files


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sniff_format(head: bytes) -> str:
    """What the first bytes of a weight file say it is.

    ``safetensors`` (8-byte little-endian header length, then a JSON object), ``torch-zip`` (the
    zip container of ``torch.save``), ``pickle`` (a raw pickle stream), or ``unknown``.
    """
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    # safetensors first: a header 640, 896, 1152 or 1408 bytes long starts with 80 02..80 05,
    # the bytes of a pickle's PROTO opcode; a pickle never has five zero bytes at 3..7.
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and head[1] in range(2, 6):
        return "pickle"
    return "unknown"


def read_safetensors(
    path: str | Path, *, expected_sha256: str | None = None
) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, refusing anything else by its bytes.

    When ``expected_sha256`` is given, the file's hash is checked before it is parsed.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"weights file not found: {p}") from None
    kind = sniff_format(data[:16])
    if kind != "safetensors":
        what = {
            "torch-zip": "a PyTorch pickle archive (torch.save)",
            "pickle": "a Python pickle",
        }.get(kind, "not a safetensors file")
        raise ModelLoadError(
            f"{p} is {what}, not safetensors. Pickled files can run code when loaded, so "
            "pixelforge does not read them as weights. If you trust where it came from, convert it "
            f"once with: pixelforge weights import {p} --allow-pickle --out converted.safetensors"
        )
    if expected_sha256 is not None:
        actual = sha256_bytes(data)
        if actual != expected_sha256:
            raise ModelLoadError(
                f"{p} does not match its recorded SHA-256 (expected {expected_sha256[:16]}..., got "
                f"{actual[:16]}...): the file was modified or is incomplete. Re-export or "
                "re-download the model."
            )
    try:
        return st_load_bytes(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelLoadError(f"{p} is a damaged safetensors file: {exc}") from None


def write_safetensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> str:
    """Write ``tensors`` atomically; returns the SHA-256 of the bytes written."""
    data = st_save_bytes(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata
    )
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def read_pickled_weights(
    path: str | Path, *, pinned_sha256: str | None = None, allow_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """A state dict from a pickled (``torch.save``) file, read only under one of two conditions.

    ``pinned_sha256``: a known public file; its hash is checked before unpickling.
    ``allow_pickle``: the user asked for it explicitly. Both read with ``weights_only=True``.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"weights file not found: {p}")
    if pinned_sha256 is not None:
        actual = sha256_file(p)
        if actual != pinned_sha256:
            raise ModelLoadError(
                f"{p} is not the expected file (SHA-256 {actual[:16]}..., expected "
                f"{pinned_sha256[:16]}...). Delete it and fetch it again."
            )
    elif not allow_pickle:
        raise ModelLoadError(
            f"{p} is a pickled file; pass --allow-pickle to import it if you trust its source."
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message runs over many lines of advice about weights_only=False, which is
        # never taken here: name the pickled class (a whole model saved), else the error type
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        why = (
            f"it pickles a {found.group(1)} object, not only tensors: save the model's "
            "state_dict() instead"
            if found
            else f"it is not a torch.save file of tensors ({type(exc).__name__})"
        )
        raise ModelLoadError(
            f"{p} could not be read as a plain state dict: {why}. Only tensors and plain "
            "containers are accepted."
        ) from None
    return _flatten_state(obj, p)


def _flatten_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "params"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path} does not hold a state dict of tensors.")
    return {str(k): v for k, v in obj.items()}


def import_pickled(
    src: str | Path,
    dst: str | Path,
    *,
    allow_pickle: bool = False,
    pinned_sha256: str | None = None,
) -> str:
    """Convert a pickled state dict to a safetensors file once; returns the new file's SHA-256."""
    tensors = read_pickled_weights(src, pinned_sha256=pinned_sha256, allow_pickle=allow_pickle)
    return write_safetensors(dst, tensors, metadata={"converted_from": Path(src).name})


# --------------------------------------------------------------------------- model dirs


def save_model(
    model: torch.nn.Module, path: str | Path, *, card: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` as a model dir: weights first, then the config that names their hash."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    family = getattr(model, "family", None)
    config = getattr(model, "config", None)
    if family is None or config is None:
        raise TypeError("a saved model needs `family` and `config` attributes")
    digest = write_safetensors(out / WEIGHTS_NAME, model.state_dict())
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pixelforge_version": __version__,
        "family": family,
        "config": to_dict(config),
        "weights": {"file": WEIGHTS_NAME, "sha256": digest},
        "card": dict(card or {}),
    }
    atomic_write_text(out / CONFIG_NAME, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def _migrate_v0(meta: dict[str, Any]) -> dict[str, Any]:
    """Format 0 (pre-release): ``model_config`` and a top-level ``sha256``."""
    return {
        "format": FORMAT,
        "format_version": 1,
        "pixelforge_version": meta.get("pixelforge_version", "0.0.0"),
        "family": meta["family"],
        "config": meta["model_config"],
        "weights": {"file": WEIGHTS_NAME, "sha256": meta["sha256"]},
        "card": meta.get("card", {}),
    }


_MIGRATIONS = {0: _migrate_v0}


def read_model_meta(model_dir: str | Path) -> dict[str, Any]:
    """The config.json of a model dir, migrated to the current format version."""
    d = Path(model_dir)
    cfg_path = d / CONFIG_NAME
    if not cfg_path.is_file():
        raise ModelLoadError(f"{d} is not a model directory: {CONFIG_NAME} is missing.")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{cfg_path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{cfg_path}: expected a JSON object.")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelLoadError(f"{cfg_path} has no format_version: it was not written by pixelforge.")
    if version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{d} uses model format {version}, written by pixelforge "
            f"{meta.get('pixelforge_version', '?')}; this is pixelforge {__version__} (format "
            f"{FORMAT_VERSION}). Upgrade pixelforge to load it."
        )
    while version < FORMAT_VERSION:
        migrate = _MIGRATIONS.get(version)
        if migrate is None:
            raise ModelLoadError(
                f"{d} uses model format {version}, which this pixelforge can no longer read. "
                "Re-export it with the pixelforge version that wrote it."
            )
        try:
            meta = migrate(meta)
        except KeyError as exc:
            raise ModelLoadError(f"{cfg_path}: format {version} file lacks key {exc}.") from None
        version = meta["format_version"]
    for key in ("family", "config", "weights"):
        if key not in meta:
            raise ModelLoadError(f"{cfg_path} lacks the '{key}' entry.")
    weights = meta["weights"]
    if (
        not isinstance(meta["family"], str)
        or not isinstance(meta["config"], dict)
        or not isinstance(weights, dict)
        or not all(isinstance(weights.get(k, ""), str) for k in ("file", "sha256"))
    ):
        raise ModelLoadError(
            f"{cfg_path} is damaged: 'family' must be a name, 'config' an object and 'weights' "
            "an object naming the weights file and its sha256. Re-export or re-download the model."
        )
    return meta


def load_model_dir(model_dir: str | Path, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model of a model dir, checking the weights' hash and every tensor name."""
    from pixelforge.registry import get_family

    d = Path(model_dir)
    meta = read_model_meta(d)
    try:
        family = get_family(meta["family"])
        config: Any = from_dict(family.config_cls, meta["config"], where="config")
    except ConfigError as exc:
        written = str(meta.get("pixelforge_version", "?"))
        newer = (
            f" It was written by pixelforge {written}, newer than this {__version__}: upgrade "
            "pixelforge to load it."
            if _version_key(written) > _version_key(__version__)
            else ""
        )
        raise ModelLoadError(f"{d / CONFIG_NAME}: {exc}{newer}") from None
    weights = meta["weights"]
    tensors = read_safetensors(
        d / weights.get("file", WEIGHTS_NAME), expected_sha256=weights.get("sha256")
    )
    model = family.model_cls(config)
    missing, unexpected = _state_mismatch(model, tensors)
    if missing or unexpected:
        raise ModelLoadError(
            f"{d}: weights do not fit a {family.name} model with this config "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: "
            f"{', '.join(unexpected[:5]) or 'none'})."
        )
    model.load_state_dict(tensors, strict=True)
    model.eval()
    model.model_sha256 = weights.get("sha256")
    model.card = meta.get("card", {})
    return model.to(device)


def _version_key(version: str) -> tuple[int, ...]:
    """The leading numbers of a version (``0.3.0rc1`` -> (0, 3, 0)); () when it has none."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def _state_mismatch(
    model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    return sorted(expected - set(tensors)), sorted(set(tensors) - expected)


# --------------------------------------------------------------------------- MODEL argument


def shipped_models() -> dict[str, Path]:
    """Models shipped inside the package: name -> model dir."""
    root = resources.files("pixelforge") / "pretrained"
    found: dict[str, Path] = {}
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and (child / CONFIG_NAME).is_file():
                found[child.name] = Path(str(child))
    return dict(sorted(found.items()))


def resolve_model_dir(spec: str | Path) -> Path:
    """The model dir a MODEL argument names: a model dir, a run dir, one checkpoint of a run, or
    a shipped model's name.

    An existing path wins over a name. A run dir resolves to the model (EMA weights) of its
    latest checkpoint.
    """
    p = Path(spec)
    if p.exists():
        if (p / CONFIG_NAME).is_file():
            return p
        if runs.is_run_dir(p):
            latest = runs.latest_checkpoint(p)
            if latest is None:
                raise ModelLoadError(
                    f"run {p} has no checkpoint yet; train it longer or wait for the first save."
                )
            return latest[1] / runs.MODEL_SUBDIR
        if (p / runs.MODEL_SUBDIR / CONFIG_NAME).is_file():  # one checkpoint of a run
            return p / runs.MODEL_SUBDIR
        raise ModelLoadError(
            f"{p} is neither a model dir (no {CONFIG_NAME}) nor a run dir (no {runs.RUN_FILE})."
        )
    shipped = shipped_models()
    if str(spec) in shipped:
        return shipped[str(spec)]
    names = ", ".join(shipped) or "none"
    raise ModelLoadError(
        f"no such model: '{spec}' is not a path, and not a shipped model ({names})."
    )


def maker_of(provenance: Mapping[str, Any]) -> dict[str, Any] | None:
    """What made an image, from the image's provenance: the model it names (a path or a shipped
    name), or else the shipped model with its weights, when that model's weights are still the
    ones recorded (``model_sha256``). Its name, family, config and what its card says of its
    training; None when no such model is found."""
    sha = provenance.get("model_sha256")
    if not isinstance(sha, str):
        return None
    candidates: list[tuple[str, Path]] = []
    named = provenance.get("model")
    if isinstance(named, str):
        # moved, deleted, or a folder of that name hides a shipped one: found by its weights
        with contextlib.suppress(ModelLoadError):
            candidates.append((named, resolve_model_dir(named)))
    candidates += list(shipped_models().items())
    for name, model_dir in candidates:
        try:
            meta = read_model_meta(model_dir)
        except ModelLoadError:
            continue
        weights, card = meta["weights"], meta.get("card")
        if isinstance(weights, dict) and weights.get("sha256") == sha:
            trained = ("summary", "data", "training_data", "init", "steps")
            card = card if isinstance(card, dict) else {}
            return {
                "model": name,
                "family": meta["family"],
                "config": meta["config"],
                **{key: card[key] for key in trained if key in card},
                "card": f"pixelforge info {name}",
            }
    return None


def load(spec: str | Path, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a model from a model dir, a run dir (latest EMA weights) or a shipped model name."""
    return load_model_dir(resolve_model_dir(spec), device=device)


def load_shipped(name: str, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The shipped model ``name``, whatever the working directory holds: a command's default
    model must not turn into a folder of the same name (``pixelforge denoise --out denoise/``
    makes one)."""
    shipped = shipped_models()
    if name not in shipped:
        raise ModelLoadError(
            f"this pixelforge ships no '{name}' model (shipped: {', '.join(shipped) or 'none'})."
        )
    return load_model_dir(shipped[name], device=device)
