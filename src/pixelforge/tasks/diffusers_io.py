"""Exchange diffusion models with diffusers: export a folder diffusers loads, import one back.

Export layout (``export_diffusers(model, OUT)``), the same for both kinds of model::

    OUT/
      unet/config.json                          UNet2DModel config
      unet/diffusion_pytorch_model.safetensors  the UNet weights (EMA weights of a trained model)
      scheduler/scheduler_config.json           DDPMScheduler with the model's training schedule
                                                (num_train_timesteps, beta_schedule, prediction_type)
      model_index.json                          unconditional models only: a DDPMPipeline folder
      pixelforge.json, README.md                where it came from; for a class-conditional model
                                                the class labels and the null class

* Unconditional model: ``OUT`` is a full ``DDPMPipeline`` folder, so
  ``DDPMPipeline.from_pretrained(OUT)`` samples from it.
* Class-conditional model (K classes): diffusers has no class-conditional pixel pipeline, so
  there is no ``model_index.json``; load the network with ``UNet2DModel.from_pretrained(OUT /
  "unet")`` and pass ``class_labels``: 0..K-1 are the classes, K is the "null" class that
  classifier-free guidance uses as the unconditional branch
  (``eps = eps(null) + w * (eps(label) - eps(null))``). The UNet has K + 1 class embeddings.

Import (``import_diffusers(DIR)``) reads such a folder back, or any diffusers ``UNet2DModel``
folder (a pipeline folder with ``unet/``, or a bare UNet folder) whose architecture fits
pixelforge's (see :func:`config_from_diffusers`). Weights are read from
``diffusion_pytorch_model.safetensors``; a pickled ``.bin`` is read only with
``allow_pickle=True``, through ``torch.load(weights_only=True)``.

Folders are written atomically: built under a temporary name next to ``OUT`` and renamed into
place, so a reader never sees half an export.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from pixelforge import hub
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.models.diffusion import (
    DiffusionConfig,
    DiffusionModel,
    scheduler_kwargs,
    unet_kwargs,
)
from pixelforge.version import __version__

UNET_DIR = "unet"
SCHEDULER_DIR = "scheduler"
UNET_CONFIG = "config.json"
UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"
UNET_PICKLE = "diffusion_pytorch_model.bin"
SCHEDULER_CONFIG = "scheduler_config.json"
NOTE_NAME = "pixelforge.json"

# diffusers scheduler settings pixelforge's schedulers leave at their defaults: a model trained
# with other values would be sampled with the wrong noise levels.
_SCHEDULER_FIXED: dict[str, Any] = {
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "trained_betas": None,
    "rescale_betas_zero_snr": False,
}


# --------------------------------------------------------------------------- atomic folders


def _is_empty_dir(p: Path) -> bool:
    return p.is_dir() and not any(p.iterdir())


def check_target(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse an existing non-empty ``out_dir`` unless ``force`` (checked before any work)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; give a folder to write to.")
    if out.is_dir() and not _is_empty_dir(out) and not force:
        raise ConfigError(f"{out} already exists and is not empty; pass --force to replace it.")
    return out


@contextlib.contextmanager
def atomic_folder(out_dir: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``out_dir``; on success it replaces ``out_dir``.

    An existing non-empty ``out_dir`` is refused unless ``force``; it is then moved aside and
    deleted only after the new folder is in place. On failure nothing changes.
    """
    out = check_target(out_dir, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        old: Path | None = None
        if out.exists():
            if _is_empty_dir(out):
                out.rmdir()
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                os.rename(out, old / "previous")
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- export


def _note(model: DiffusionModel, *, source: str | None) -> dict[str, Any]:
    k = model.num_classes
    note: dict[str, Any] = {
        "format": "pixelforge-diffusers-export",
        "pixelforge_version": __version__,
        "source": source,
        "pixelforge_config": {
            f: (list(v) if isinstance(v, tuple) else v) for f, v in vars(model.config).items()
        },
        "unet": f"{UNET_DIR}/ (diffusers UNet2DModel)",
        "scheduler": f"{SCHEDULER_DIR}/ (DDPMScheduler: the training noise schedule)",
    }
    if k:
        note |= {
            "class_conditional": True,
            "num_classes": k,
            "class_labels": f"0..{k - 1}",
            "null_class": model.null_class,
            "guidance": (
                "classifier-free guidance: eps = eps(null) + w * (eps(label) - eps(null)), "
                f"with class_labels={model.null_class} for eps(null)"
            ),
            "load": f"UNet2DModel.from_pretrained(OUT / '{UNET_DIR}')",
        }
    else:
        note |= {"class_conditional": False, "load": "DDPMPipeline.from_pretrained(OUT)"}
    return note


def _readme(note: Mapping[str, Any]) -> str:
    lines = [
        "# pixelforge diffusion model, exported for diffusers",
        "",
        f"Exported by pixelforge {note['pixelforge_version']}"
        + (f" from `{note['source']}`." if note.get("source") else "."),
        "",
    ]
    if note["class_conditional"]:
        k, null = note["num_classes"], note["null_class"]
        lines += [
            f"Class-conditional UNet with {k} classes: `class_labels` 0..{k - 1} are the classes, "
            f"and {null} is the null (unconditional) class used by classifier-free guidance.",
            "",
            "```python",
            "from diffusers import UNet2DModel, DDPMScheduler",
            f'unet = UNet2DModel.from_pretrained("OUT/{UNET_DIR}")',
            f'scheduler = DDPMScheduler.from_pretrained("OUT/{SCHEDULER_DIR}")',
            "eps = unet(x, t, class_labels=labels).sample",
            "```",
        ]
    else:
        lines += [
            "Unconditional model: a DDPMPipeline folder.",
            "",
            "```python",
            "from diffusers import DDPMPipeline",
            'images = DDPMPipeline.from_pretrained("OUT")(batch_size=4).images',
            "```",
        ]
    return "\n".join(lines) + "\n"


def export_diffusers(
    model: DiffusionModel, out_dir: str | Path, *, force: bool = False, source: str | None = None
) -> Path:
    """Write ``model`` as a folder diffusers loads; returns ``out_dir``.

    Layout (see the module docstring): ``unet/`` (``UNet2DModel``, safetensors), ``scheduler/``
    (``DDPMScheduler`` with the model's ``num_train_timesteps``, ``beta_schedule`` and
    ``prediction_type``), ``pixelforge.json`` and ``README.md``. An unconditional model also gets
    ``model_index.json``, making ``out_dir`` a ``DDPMPipeline`` folder
    (``DDPMPipeline.from_pretrained(out_dir)`` samples from it). A class-conditional model with K
    classes is loaded with ``UNet2DModel.from_pretrained(out_dir / "unet")``; its class labels are
    0..K-1 and label K is the null class of classifier-free guidance.

    The folder is built under a temporary name and renamed into place; an existing non-empty
    ``out_dir`` is refused unless ``force``.
    """
    from diffusers import DDPMPipeline, DDPMScheduler

    if not isinstance(model, DiffusionModel):
        family = getattr(model, "family", type(model).__name__)
        raise ConfigError(
            f"only diffusion models can be exported to diffusers; this is a {family} model."
        )
    scheduler: Any = DDPMScheduler(**scheduler_kwargs(model.config))
    note = _note(model, source=source)
    unet: Any = model.unet
    with atomic_folder(out_dir, force=force) as tmp:
        if model.num_classes:
            unet.save_pretrained(tmp / UNET_DIR, safe_serialization=True)
            scheduler.save_pretrained(tmp / SCHEDULER_DIR)
        else:
            pipeline: Any = DDPMPipeline(unet=unet, scheduler=scheduler)
            pipeline.save_pretrained(tmp, safe_serialization=True)
        (tmp / NOTE_NAME).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(note), encoding="utf-8")
    return Path(out_dir)


# --------------------------------------------------------------------------- import


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ModelLoadError(f"{path}: expected a JSON object.")
    return doc


def find_unet_dir(folder: str | Path) -> Path:
    """The UNet folder of ``folder``: ``folder/unet`` of a pipeline, or ``folder`` itself."""
    d = Path(folder)
    if not d.is_dir():
        raise ModelLoadError(f"no such folder: {d}")
    if (d / UNET_DIR / UNET_CONFIG).is_file():
        return d / UNET_DIR
    if (d / UNET_CONFIG).is_file():
        return d
    raise ModelLoadError(
        f"{d} is not a diffusers UNet folder: neither {d / UNET_DIR / UNET_CONFIG} (a pipeline) "
        f"nor {d / UNET_CONFIG} (a bare UNet folder) exists."
    )


def _find_scheduler_config(folder: Path, unet_dir: Path) -> Path | None:
    for cand in (
        folder / SCHEDULER_DIR / SCHEDULER_CONFIG,
        unet_dir.parent / SCHEDULER_DIR / SCHEDULER_CONFIG,
        folder / SCHEDULER_CONFIG,
    ):
        if cand.is_file():
            return cand
    return None


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


def _unet_defaults() -> dict[str, Any]:
    from diffusers import UNet2DModel

    sig = inspect.signature(UNet2DModel.__init__)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if name != "self" and p.default is not inspect.Parameter.empty
    }


def config_from_diffusers(
    unet_config: Mapping[str, Any],
    scheduler_config: Mapping[str, Any] | None = None,
    *,
    where: str = "config.json",
) -> DiffusionConfig:
    """The :class:`DiffusionConfig` whose UNet is exactly ``unet_config``, or a ConfigError.

    pixelforge's UNet (:func:`pixelforge.models.diffusion.unet_kwargs`) is a ``UNet2DModel`` with
    plain ``DownBlock2D``/``UpBlock2D`` blocks, optionally self-attention at the lowest
    resolution only (``AttnDownBlock2D`` last, ``AttnUpBlock2D`` first), GroupNorm groups
    ``gcd(widths, 32)``, 1 or 3 channels in and out, a square power-of-two size, and optional
    class embeddings (the last one the null class). Every other field must keep diffusers'
    default; the first field that does not fit is named in the error.
    """
    cls = unet_config.get("_class_name", "UNet2DModel")
    if cls != "UNet2DModel":
        what = (
            "a text-conditioned UNet with cross-attention (UNet2DConditionModel)"
            if cls == "UNet2DConditionModel"
            else f"a {cls}"
        )
        raise ConfigError(
            f"{where}: _class_name is '{cls}': this is {what}; pixelforge imports only "
            "UNet2DModel pixel-space diffusion models."
        )

    def bad(field: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{where}: unsupported {field}={json.dumps(_plain(value))}: {why}")

    defaults = _unet_defaults()
    cfg = {**defaults, **{k: v for k, v in unet_config.items() if not k.startswith("_")}}
    unknown = sorted(k for k in cfg if k not in defaults and cfg[k] is not None)
    if unknown:
        raise bad(unknown[0], cfg[unknown[0]], "a UNet2DModel field this diffusers does not know.")

    size = cfg["sample_size"]
    if isinstance(size, list | tuple):
        if len(size) != 2 or size[0] != size[1]:
            raise bad("sample_size", size, "pixelforge models are square.")
        size = size[0]
    if not isinstance(size, int):
        raise bad("sample_size", size, "an image side in pixels is required.")
    channels = cfg["in_channels"]
    if cfg["out_channels"] != channels:
        raise bad("out_channels", cfg["out_channels"], f"must equal in_channels ({channels}).")
    if channels not in (1, 3):
        raise bad("in_channels", channels, "pixelforge models have 1 (grey) or 3 (RGB) channels.")
    widths = tuple(int(w) for w in cfg["block_out_channels"])
    down = [str(b) for b in cfg["down_block_types"]]
    if len(down) != len(widths):
        raise bad("down_block_types", down, f"needs one block per width ({len(widths)}).")
    allowed = {"DownBlock2D", "AttnDownBlock2D"}
    for b in down:
        if b not in allowed:
            raise bad("down_block_types", down, f"block type {b} is not supported "
                      "(pixelforge uses DownBlock2D, and AttnDownBlock2D at the lowest level).")  # fmt: skip
    attention = down[-1] == "AttnDownBlock2D"
    if "AttnDownBlock2D" in down[:-1]:
        raise bad("down_block_types", down,
                  "pixelforge has self-attention only at the lowest resolution (last block).")  # fmt: skip
    num_class_embeds = cfg["num_class_embeds"]
    if num_class_embeds is not None and (
        not isinstance(num_class_embeds, int) or num_class_embeds < 2
    ):
        raise bad("num_class_embeds", num_class_embeds,
                  "a class-conditional pixelforge model has K classes plus one null class (>= 2).")  # fmt: skip
    num_classes = num_class_embeds - 1 if num_class_embeds else 0

    sched = dict(scheduler_config or {})
    prediction = sched.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise bad("prediction_type", prediction,
                  "pixelforge models predict epsilon or v_prediction.")  # fmt: skip
    beta_schedule = sched.get("beta_schedule", "linear")
    if beta_schedule not in ("linear", "squaredcos_cap_v2"):
        raise bad("beta_schedule", beta_schedule,
                  "pixelforge schedules are linear or squaredcos_cap_v2.")  # fmt: skip
    for key, value in _SCHEDULER_FIXED.items():
        if key in ("beta_start", "beta_end") and beta_schedule != "linear":
            continue
        got = sched.get(key, value)
        if got != value and not (isinstance(got, float) and abs(got - value) < 1e-12):
            raise bad(key, got, f"pixelforge's schedulers use {key}={json.dumps(value)}.")
    try:
        config = DiffusionConfig(
            image_size=size,
            channels=channels,
            num_classes=num_classes,
            block_out_channels=widths,
            layers_per_block=int(cfg["layers_per_block"]),
            attention=attention,
            prediction=prediction,
            num_train_timesteps=int(sched.get("num_train_timesteps", 1000)),
            beta_schedule=beta_schedule,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: this UNet does not fit a pixelforge model: {exc}") from None

    # Every remaining field must be what pixelforge would build for this config.
    expected = {**defaults, **unet_kwargs(config)}
    skip = {"sample_size", "in_channels", "out_channels", "block_out_channels",
            "layers_per_block", "num_class_embeds", "down_block_types"}  # fmt: skip
    if not attention:
        skip |= {"attention_head_dim", "attn_norm_num_groups"}  # unused without attention
    for key in sorted(expected):
        if key in skip:
            continue
        got, want = _plain(cfg.get(key)), _plain(expected[key])
        if got != want:
            raise bad(key, got, f"pixelforge builds this UNet with {key}={json.dumps(want)}.")
    return config


def _read_weights(unet_dir: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    st = unet_dir / UNET_WEIGHTS
    if st.is_file():
        return hub.read_safetensors(st)
    pk = unet_dir / UNET_PICKLE
    if pk.is_file():
        if not allow_pickle:
            raise ModelLoadError(
                f"{pk} is a pickled file (it can run code when loaded), and {unet_dir} has no "
                f"{UNET_WEIGHTS}. Pass --allow-pickle to import it if you trust its source."
            )
        return hub.read_pickled_weights(pk, allow_pickle=True)
    raise ModelLoadError(f"{unet_dir} has no weights: {UNET_WEIGHTS} is missing.")


def import_diffusers(folder: str | Path, *, allow_pickle: bool = False) -> DiffusionModel:
    """A :class:`DiffusionModel` from a diffusers UNet2DModel folder (pipeline or bare UNet).

    The architecture comes from ``unet/config.json`` and the schedule (prediction type, beta
    schedule, number of training steps) from ``scheduler/scheduler_config.json`` when present
    (else the defaults: epsilon, linear, 1000). A UNet that does not fit pixelforge's
    architecture is a :class:`ConfigError` naming the first unsupported field.
    """
    d = Path(folder)
    unet_dir = find_unet_dir(d)
    unet_config = _read_json(unet_dir / UNET_CONFIG)
    sched_path = _find_scheduler_config(d, unet_dir)
    sched = _read_json(sched_path) if sched_path is not None else None
    config = config_from_diffusers(unet_config, sched, where=str(unet_dir / UNET_CONFIG))
    tensors = _read_weights(unet_dir, allow_pickle)
    model = DiffusionModel(config)
    unet: Any = model.unet
    expected = set(unet.state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"{unet_dir}: weights do not fit the UNet its config describes (missing: "
            f"{', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})."
        )
    for key, t in tensors.items():
        want = unet.state_dict()[key].shape
        if t.shape != want:
            raise ModelLoadError(
                f"{unet_dir}: tensor {key} has shape {tuple(t.shape)}, expected {tuple(want)}."
            )
    unet.load_state_dict(tensors, strict=True)
    model.eval()
    return model


def import_to_model_dir(
    folder: str | Path,
    out_dir: str | Path,
    *,
    allow_pickle: bool = False,
    force: bool = False,
) -> tuple[DiffusionModel, Path]:
    """Import a diffusers folder and save it as a pixelforge model dir (written atomically)."""
    check_target(out_dir, force=force)
    model = import_diffusers(folder, allow_pickle=allow_pickle)
    k = model.num_classes
    card = {
        "summary": (
            f"diffusion model imported from diffusers ({'class-conditional, ' + str(k) + ' classes' if k else 'unconditional'})"
        ),
        "source": str(Path(folder)),
    }
    with atomic_folder(out_dir, force=force) as tmp:
        hub.save_model(model, tmp, card=card)
    return model, Path(out_dir)
