"""Import generators trained with junyanz/pytorch-CycleGAN-and-pix2pix.

That code saves each network as a pickled state dict (``latest_net_G.pth`` for pix2pix,
``latest_net_G_A.pth`` / ``latest_net_G_B.pth`` for CycleGAN; its pretrained downloads such as
``horse2zebra.pth`` are a ``G_A``). The file is read through :func:`pixelforge.hub.read_pickled_weights`
(``weights_only=True``, refused unless the user passes ``--allow-pickle``) or, once converted
with ``pixelforge weights import``, as safetensors. Keys are renamed to pixelforge's layout; the
architecture (``unet_*`` or ``resnet_*``, its widths and depth, channels, batch or instance norm
and, for ResNets, dropout) is read from the tensors and checked against the options given.

- ``unet_256`` / ``unet_128`` (any depth) -> a ``pix2pix`` model dir.
- ``resnet_9blocks`` / ``resnet_6blocks`` (any block count) -> a ``cyclegan`` model dir, with
  both generators (``g_ab`` = their G_A, ``g_ba`` = their G_B) or only the one given
  (``direction``); a ResNet trained with their pix2pix imports the same way.

Batch norm at test time: their ``test.py`` runs the networks in training mode unless given
``--eval``, at batch size 1, so batch norm normalises each image with its own statistics, as the
pix2pix paper does at test time. That is the default here too (``bn_stats="image"``: the model's
``norm`` is ``batch-image``, batch norm's scale and shift with each image's statistics, which
tiled inference gathers over the whole image); ``bn_stats="running"`` uses the running averages,
as with their ``--eval``. Dropout is off either way (their default test keeps it on, so their
outputs are random), and old instance-norm checkpoints' ``running_mean``/``running_var`` entries
are dropped, as their loader does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from pixelforge import hub
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.models.cyclegan import CycleGAN, CycleGANConfig
from pixelforge.models.pix2pix import Norm, Pix2Pix, Pix2PixConfig

NETG_NAMES = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class GeneratorInfo:
    """What a junyanz generator state dict holds, read from its tensors."""

    arch: Literal["unet", "resnet"]
    in_channels: int
    out_channels: int
    ngf: int
    depth: int  # unet: halvings; resnet: residual blocks
    norm: Literal["batch", "instance"]
    dropout: bool | None  # resnet: read from the layout; unet: unknown (no weights)

    @property
    def netg(self) -> str:
        return f"unet_{2**self.depth}" if self.arch == "unet" else f"resnet_{self.depth}blocks"


# ----------------------------------------------------------------------------- reading


def read_state(path: str | Path, *, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """The tensors of a junyanz weight file (pickle only with ``allow_pickle``; or safetensors)."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"weights file not found: {p}")
    with open(p, "rb") as f:
        head = f.read(16)
    if hub.sniff_format(head) == "safetensors":
        state = hub.read_safetensors(p)
    else:
        state = hub.read_pickled_weights(p, allow_pickle=allow_pickle)
    return {k.removeprefix("module."): v for k, v in state.items()}


def _unet_prefix(level: int) -> str:
    """Key prefix of U-Net level ``level`` in their nested skip blocks."""
    if level == 0:
        return "model.model."
    return _unet_prefix(level - 1) + ("1.model." if level == 1 else "3.model.")


def describe(state: dict[str, torch.Tensor], path: str | Path) -> GeneratorInfo:
    """Read the architecture from the tensors (a ModelLoadError if it is no known generator)."""
    if "model.model.0.weight" in state:
        depth = 1
        while f"{_unet_prefix(depth)}1.weight" in state:
            depth += 1
        w0 = state["model.model.0.weight"]
        out = state["model.model.3.weight"].shape[1] if "model.model.3.weight" in state else 0
        batch = f"{_unet_prefix(1)}2.weight" in state
        return GeneratorInfo(
            "unet", int(w0.shape[1]), int(out), int(w0.shape[0]), depth,
            "batch" if batch else "instance", None,
        )  # fmt: skip
    if "model.1.weight" in state and state["model.1.weight"].ndim == 4:
        blocks = sorted(
            {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        )
        n = len(blocks)
        if blocks != list(range(10, 10 + n)):
            raise ModelLoadError(f"{path}: its residual blocks are not numbered as expected.")
        w0 = state["model.1.weight"]
        last = state.get(f"model.{10 + n + 7}.weight")
        # with dropout the second conv is conv_block.6 (a 4-d weight); without, conv_block.6 is
        # the second norm, whose batch-norm weight is 1-d
        second = state.get("model.10.conv_block.6.weight")
        dropout = second is not None and second.ndim == 4
        return GeneratorInfo(
            "resnet", int(w0.shape[1]), int(last.shape[0]) if last is not None else 0,
            int(w0.shape[0]), n, "batch" if "model.2.weight" in state else "instance", dropout,
        )  # fmt: skip
    raise ModelLoadError(
        f"{path} does not hold a generator of pytorch-CycleGAN-and-pix2pix (no model.1.weight or "
        "model.model.0.weight); give a latest_net_G*.pth file, not a discriminator (net_D)."
    )


def _check_options(
    info: GeneratorInfo, path: str | Path, netg: str | None, norm: str | None, dropout: bool | None
) -> None:
    if netg is not None:
        if netg not in NETG_NAMES:
            raise ConfigError(f"--netG must be one of {', '.join(NETG_NAMES)}, got '{netg}'.")
        if netg != info.netg:
            raise ConfigError(
                f"{path} holds a {info.netg} generator, not {netg}; drop --netG (it is read "
                "from the file) or pick the right file."
            )
    if norm is not None and norm != info.norm:
        raise ConfigError(
            f"{path} was trained with --norm {info.norm} (its norm layers say so), not {norm}; "
            "drop --norm."
        )
    if info.dropout is not None and dropout is not None and dropout != info.dropout:
        raise ConfigError(
            f"{path} was trained {'with' if info.dropout else 'without'} dropout (its layer "
            f"numbering says so); drop --{'no-' if not dropout else ''}dropout."
        )


# ----------------------------------------------------------------------------- renaming


def _unet_names(depth: int) -> list[tuple[str, str]]:
    """(their prefix, our prefix) of every layer with tensors in a depth-``depth`` U-Net."""
    pairs: list[tuple[str, str]] = []
    for i in range(depth):
        theirs = _unet_prefix(i)
        if i == 0:
            pairs += [(theirs + "0.", "down.0.0."), (theirs + "3.", "up.0.1.")]
        elif i == depth - 1:
            pairs += [(theirs + "1.", f"down.{i}.1."), (theirs + "3.", f"up.{i}.1.")]
            pairs += [(theirs + "4.", f"up.{i}.2.")]
        else:
            pairs += [(theirs + "1.", f"down.{i}.1."), (theirs + "2.", f"down.{i}.2.")]
            pairs += [(theirs + "5.", f"up.{i}.1."), (theirs + "6.", f"up.{i}.2.")]
    return pairs


def _resnet_names(blocks: int, dropout: bool) -> list[tuple[str, str]]:
    pairs = [("model.1.", "head.1."), ("model.2.", "head.2.")]
    pairs += [("model.4.", "down.0."), ("model.5.", "down.1.")]
    pairs += [("model.7.", "down.3."), ("model.8.", "down.4.")]
    shift = 1 if dropout else 0
    for k in range(blocks):
        t = f"model.{10 + k}.conv_block."
        pairs += [(f"{t}1.", f"blocks.{k}.conv1."), (f"{t}2.", f"blocks.{k}.norm1.")]
        pairs += [
            (f"{t}{5 + shift}.", f"blocks.{k}.conv2."),
            (f"{t}{6 + shift}.", f"blocks.{k}.norm2."),
        ]
    u = 10 + blocks
    pairs += [(f"model.{u}.", "up.0."), (f"model.{u + 1}.", "up.1.")]
    pairs += [(f"model.{u + 3}.", "up.3."), (f"model.{u + 4}.", "up.4.")]
    pairs += [(f"model.{u + 7}.", "tail.1.")]
    return pairs


def rename(
    state: dict[str, torch.Tensor], info: GeneratorInfo, target: torch.nn.Module, path: str | Path
) -> dict[str, torch.Tensor]:
    """Their keys -> the keys of ``target`` (our generator), every tensor accounted for."""
    pairs = (
        _unet_names(info.depth)
        if info.arch == "unet"
        else _resnet_names(info.depth, bool(info.dropout))
    )
    expected = target.state_dict()
    out: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        for theirs, ours in pairs:
            if key.startswith(theirs):
                new = ours + key[len(theirs) :]
                break
        else:
            unused.append(key)
            continue
        if new not in expected:
            if key.rsplit(".", 1)[-1] in _NORM_STATS:
                continue  # running statistics our norm does not use (instance or batch-image)
            unused.append(key)
            continue
        if tuple(value.shape) != tuple(expected[new].shape):
            raise ModelLoadError(
                f"{path}: {key} has shape {tuple(value.shape)}, expected "
                f"{tuple(expected[new].shape)} for a {info.netg} generator."
            )
        out[new] = value.to(expected[new].dtype)
    for key, value in expected.items():  # batch norm saved before torch 0.4.1 lacks the counter
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = torch.zeros_like(value)
    missing = sorted(set(expected) - set(out))
    if unused or missing:
        raise ModelLoadError(
            f"{path} does not fit a {info.netg} generator (unexpected: "
            f"{', '.join(unused[:5]) or 'none'}; missing: {', '.join(missing[:5]) or 'none'})."
        )
    return out


# ----------------------------------------------------------------------------- models


def _channels(a: int, b: int) -> int:
    return 3 if 3 in (a, b) else 1


def _norm(info: GeneratorInfo, bn_stats: str) -> Norm:
    """Our norm for their ``info.norm`` run with ``bn_stats`` (module docstring)."""
    return "batch-image" if info.norm == "batch" and bn_stats == "image" else info.norm


def pix2pix_from(
    state: dict[str, torch.Tensor], info: GeneratorInfo, path: str | Path, dropout: bool | None,
    bn_stats: str = "image",
) -> Pix2Pix:  # fmt: skip
    """A pix2pix model holding the U-Net of ``state``."""
    config = Pix2PixConfig(
        image_size=2**info.depth, channels=_channels(info.in_channels, info.out_channels),
        channels_a=info.in_channels, channels_b=info.out_channels, ngf=info.ngf,
        depth=info.depth, norm=_norm(info, bn_stats), dropout=True if dropout is None else dropout,
        d_layers=3 if 2**info.depth >= 24 else 1,
    )  # fmt: skip
    model = Pix2Pix(config)
    model.generator.load_state_dict(rename(state, info, model.generator, path))
    return model.eval()


def cyclegan_from(
    files: dict[str, tuple[dict[str, torch.Tensor], GeneratorInfo, str]], bn_stats: str = "image"
) -> CycleGAN:
    """A cyclegan model from ``{"AtoB": (state, info, path), "BtoA": ...}`` (one or both)."""
    infos = [info for _, info, _ in files.values()]
    first = infos[0]
    for other in infos[1:]:
        same = (other.ngf, other.depth, other.norm, other.dropout)
        if same != (first.ngf, first.depth, first.norm, first.dropout):
            raise ConfigError(
                f"the two generator files differ in architecture ({first.netg}, ngf {first.ngf}, "
                f"{first.norm} norm vs {other.netg}, ngf {other.ngf}, {other.norm} norm); give "
                "G_A and G_B of the same run."
            )
    ab = files.get("AtoB")
    ba = files.get("BtoA")
    if ab is not None:
        ca, cb = ab[1].in_channels, ab[1].out_channels
    else:
        assert ba is not None
        cb, ca = ba[1].in_channels, ba[1].out_channels
    if ab is not None and ba is not None and (ba[1].in_channels, ba[1].out_channels) != (cb, ca):
        raise ConfigError(
            f"G_B ({ba[2]}) maps {ba[1].in_channels} to {ba[1].out_channels} channels, but G_A "
            f"maps {ca} to {cb}; G_B must map B back to A."
        )
    generators: Any = "both" if len(files) == 2 else next(iter(files))
    config = CycleGANConfig(
        image_size=256, channels=_channels(ca, cb), channels_a=ca, channels_b=cb, ngf=first.ngf,
        n_blocks=first.depth, norm=_norm(first, bn_stats), dropout=bool(first.dropout),
        generators=generators,
    )  # fmt: skip
    model = CycleGAN(config)
    for direction, (state, info, path) in files.items():
        g = model.generator_for(direction)
        assert g is not None
        g.load_state_dict(rename(state, info, g, path))
    return model.eval()


def import_junyanz(
    file: str | Path | None = None,
    *,
    g_ab: str | Path | None = None,
    g_ba: str | Path | None = None,
    direction: str | None = None,
    netg: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
    bn_stats: str = "image",
    allow_pickle: bool = False,
) -> Pix2Pix | CycleGAN:
    """The pixelforge model of one junyanz generator file (``file``; a ResNet is the generator
    of ``direction``) or of a CycleGAN pair (``g_ab`` = their G_A, ``g_ba`` = their G_B).
    ``bn_stats``: image or running statistics for batch norm (module docstring)."""
    if norm is not None and norm not in ("batch", "instance"):
        raise ConfigError(f"--norm must be batch or instance, got '{norm}'.")
    if bn_stats not in ("image", "running"):
        raise ConfigError(
            f"--bn-stats must be image (each image's own statistics, as their test.py) or "
            f"running (the running averages, as their test.py --eval), got '{bn_stats}'."
        )
    if direction not in (None, "AtoB", "BtoA"):
        raise ConfigError(f"--direction must be AtoB or BtoA, got '{direction}'.")
    if file is not None and (g_ab is not None or g_ba is not None):
        raise ConfigError("give either one FILE or --g-ab/--g-ba, not both.")
    if file is None and g_ab is None and g_ba is None:
        raise ConfigError(
            "give a generator file (latest_net_G.pth), or --g-ab G_A.pth and/or --g-ba G_B.pth."
        )
    if direction is None:  # their CycleGAN saves G_B (B -> A) as *_net_G_B.pth
        direction = "BtoA" if file is not None and Path(file).stem.endswith("G_B") else "AtoB"
    named = {"AtoB": g_ab, "BtoA": g_ba} if file is None else {direction: file}
    loaded: dict[str, tuple[dict[str, torch.Tensor], GeneratorInfo, str]] = {}
    for d, p in named.items():
        if p is None:
            continue
        state = read_state(p, allow_pickle=allow_pickle)
        info = describe(state, p)
        _check_options(info, p, netg, norm, dropout)
        loaded[d] = (state, info, str(p))
    archs = {info.arch for _, info, _ in loaded.values()}
    if archs == {"unet"}:
        if len(loaded) > 1 or g_ab is not None or g_ba is not None or direction != "AtoB":
            raise ConfigError(
                "a U-Net generator is a pix2pix model, which translates A to B only: give it as "
                "FILE, without --g-ab/--g-ba/--direction."
            )
        state, info, path = loaded["AtoB"]
        return pix2pix_from(state, info, path, dropout, bn_stats)
    if archs != {"resnet"}:
        raise ConfigError("--g-ab and --g-ba must both be ResNet generators of one CycleGAN run.")
    return cyclegan_from(loaded, bn_stats)


def import_to_model_dir(
    out_dir: str | Path, *, force: bool = False, **kwargs: Any
) -> tuple[Pix2Pix | CycleGAN, Path]:
    """:func:`import_junyanz`, then save the model dir (atomically; ``force`` replaces it)."""
    from pixelforge.tasks.diffusers_io import atomic_folder, check_target

    check_target(out_dir, force=force)
    model = import_junyanz(**kwargs)
    sources = [str(Path(kwargs[k]).name) for k in ("file", "g_ab", "g_ba") if kwargs.get(k)]
    card = {
        "summary": f"{model.family} generator imported from pytorch-CycleGAN-and-pix2pix",
        "source": ", ".join(sources),
    }
    with atomic_folder(out_dir, force=force) as tmp:
        hub.save_model(model, tmp, card=card)
    return model, Path(out_dir)
