"""Create or resume a run: the one place a run's configuration is decided.

New run: defaults <- ``--config`` file <- ``--set`` values (<- the ``--init`` model's architecture),
then fields left null (``channels``, ``num_classes``) are taken from the dataset. The result is
written to ``run.json`` and fixed for the run. Resumed run: architecture, data and data options
come from ``run.json``; a flag that contradicts them is an error; training options (``train.*``,
such as a higher ``train.steps``) may change.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelforge import runs
from pixelforge.config import from_dict, merge, to_dict
from pixelforge.data import DataConfig, DatasetInfo, inspect_dataset
from pixelforge.data.folders import FOLDER_KINDS
from pixelforge.errors import ConfigError, ModelLoadError, PixelforgeError
from pixelforge.io.atomic import atomic_write_text
from pixelforge.registry import Family, get_family
from pixelforge.version import __version__

RUN_FORMAT_VERSION = 1
SECTIONS = ("model", "train", "data")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run."""

    family: Family
    data: str  # dataset spec, e.g. "digits" or "folder:/photos"
    model: Any  # the family's model config
    train: Any  # the family's train config
    data_config: DataConfig
    init: str | None = None  # the model dir training started from, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": RUN_FORMAT_VERSION,
            "pixelforge_version": __version__,
            "family": self.family.name,
            "data": self.data,
            "init": self.init,
            "config": {
                "model": to_dict(self.model),
                "train": to_dict(self.train),
                "data": to_dict(self.data_config),
            },
        }


def default_config(family: Family) -> dict[str, Any]:
    """The family's defaults as a nested dict."""
    return {
        "model": to_dict(family.config_cls()),
        "train": to_dict(family.train_config_cls()),
        "data": to_dict(DataConfig()),
    }


def _check_sections(values: dict[str, Any], where: str) -> None:
    for key in values:
        if key not in SECTIONS:
            raise ConfigError(
                f"{where}: unknown section '{key}'; use model., train. or data. keys."
            )


def place_bare_keys(values: dict[str, Any], family: Family, where: str) -> dict[str, Any]:
    """``values`` with each key given without a section (``--set style=X``) moved to the one
    section of ``family`` that has a field of that name (``train.style``); a name two sections
    share must be given in full."""
    fields = {section: set(keys) for section, keys in default_config(family).items()}
    out = {k: v for k, v in values.items() if k in SECTIONS}
    for key, value in values.items():
        if key in SECTIONS:
            continue
        owners = [section for section, names in fields.items() if key in names]
        if len(owners) > 1:
            raise ConfigError(
                f"{where}: '{key}' is in more than one section of {family.name}; write "
                f"{' or '.join(f'{o}.{key}' for o in owners)}."
            )
        if not owners:
            close = difflib.get_close_matches(key, sorted(set().union(*fields.values())), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown key '{key}' for {family.name}.{hint} Use model., train. or data. "
                f"keys (`pixelforge train {family.name} --data DATA --print-config` lists them)."
            )
        out = merge(out, {owners[0]: {key: value}})
    return out


def _build(family: Family, values: dict[str, Any]) -> tuple[Any, Any, DataConfig]:
    model: Any = from_dict(family.config_cls, values.get("model", {}), where="model")
    train: Any = from_dict(family.train_config_cls, values.get("train", {}), where="train")
    data_config = from_dict(DataConfig, values.get("data", {}), where="data")
    data_config.validate()
    return model, train, data_config


def resolve_from_data(model: Any, info: DatasetInfo) -> Any:
    """Fill the model fields left null from the dataset, and check the ones that were set."""
    names = {f.name for f in dataclasses.fields(model)}
    changes: dict[str, Any] = {}
    if "channels" in names and model.channels is None:
        changes["channels"] = 1 if info.channels == 1 else 3
    if "num_classes" in names:
        k = model.num_classes
        if k is None:
            changes["num_classes"] = info.num_classes
        elif k > 0 and info.num_classes == 0:
            raise ConfigError(
                f"model.num_classes={k} asks for a class-conditional model, but dataset '{info.spec}' "
                "has no labels (put images in one sub-folder per class, or set model.num_classes=0)."
            )
        elif k > 0 and k != info.num_classes:
            raise ConfigError(
                f"model.num_classes={k} but dataset '{info.spec}' has {info.num_classes} classes; "
                f"set model.num_classes={info.num_classes} (or null to take it from the data)."
            )
    return dataclasses.replace(model, **changes) if changes else model


def read_run(run_dir: Path) -> RunSpec:
    """The RunSpec stored in ``run_dir/run.json``."""
    path = run_dir / runs.RUN_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object, as pixelforge train writes.")
    if doc.get("format_version") != RUN_FORMAT_VERSION:
        raise ConfigError(f"{path}: run format {doc.get('format_version')} is not supported.")
    missing = [key for key in ("family", "config", "data") if key not in doc]
    if missing or not isinstance(doc["family"], str) or not isinstance(doc["config"], dict):
        what = (
            f"lacks {', '.join(missing)}" if missing else "has a family or config of another type"
        )
        raise ConfigError(f"{path} {what}: it is damaged or not a run's.")
    family = get_family(doc["family"])
    model, train, data_config = _build(family, doc["config"])
    return RunSpec(family, doc["data"], model, train, data_config, doc.get("init"))


def resume_mismatch(run_dir: Path, spec: RunSpec, why: str) -> PixelforgeError:
    """The error for a resume whose training options build other modules than the run's
    checkpoint holds (``why`` names the module): the options that changed, and the ways out."""
    old, new = to_dict(read_run(run_dir).train), to_dict(spec.train)
    changed = [  # train.steps is what a resume usually changes, and shapes nothing
        f"train.{k}={json.dumps(v)} (run has {json.dumps(old.get(k))})"
        for k, v in new.items()
        if k != "steps" and v != old.get(k)
    ]
    if not changed:
        return ModelLoadError(f"{why}.")
    return ConfigError(
        f"{run_dir} cannot resume with {'; '.join(changed)}: they change what is trained "
        f"({why}). Drop them to resume, or start a new run from this one with --init {run_dir} "
        "--out NEW_RUN."
    )


def write_run(run_dir: Path, spec: RunSpec) -> None:
    """Write ``run.json`` atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        run_dir / runs.RUN_FILE, json.dumps(spec.to_json(), indent=2, sort_keys=True) + "\n"
    )


def _conflicts(
    section: str, stored: dict[str, Any], asked: dict[str, Any], owner: str = "run"
) -> list[str]:
    """Asked values that differ from the stored ones (null asks for "from the data": no conflict)."""
    return [
        f"{section}.{k}={json.dumps(v)} ({owner} has {json.dumps(stored.get(k))})"
        for k, v in asked.items()
        if k in stored and v is not None and stored[k] != (list(v) if isinstance(v, tuple) else v)
    ]


def _resolve_nulls(stored: RunSpec, asked: dict[str, Any]) -> dict[str, Any]:
    """``asked`` with its nulls ("from the data") replaced by what they mean for the stored run's
    data, so a resume compares values: num_classes=null on a labelled dataset asks for a
    class-conditional model, which an unconditional run is not."""
    names = {f.name for f in dataclasses.fields(stored.model)}
    # a field the run itself keeps null stays so: null asked for it is no conflict
    nulls = [
        k
        for k, v in asked.items()
        if v is None and k in names and getattr(stored.model, k) is not None
    ]
    if not nulls:
        return asked
    blank = dataclasses.replace(stored.model, **{k: None for k in nulls})
    if stored.family.open_data is not None:
        filled = stored.family.open_data(stored.data, blank, stored.train).resolve_model(blank)
    else:
        filled = resolve_from_data(blank, inspect_dataset(stored.data, stored.data_config))
    return {**asked, **{k: getattr(filled, k) for k in nulls}}


def _absolute(data: str) -> str:
    """``data`` with a folder's path made absolute: run.json then names the same folder from
    any working directory (``pixelforge train --out RUN`` resumes from anywhere), and
    ``folder:photos/`` given again from elsewhere as ``folder:/home/me/photos`` is the same."""
    kind, _, path = data.partition(":")
    if kind not in FOLDER_KINDS or not path.strip():
        return data
    return f"{kind}:{Path(path).expanduser().resolve()}"


def _same_init(asked: str, stored: str | None) -> bool:
    """Whether ``--init asked``, given when resuming, names the model the run started from
    (the same command run again): that model dir, or the run dir it came from, which may have
    trained on since."""
    from pixelforge.hub import resolve_model_dir

    if stored is None:
        return False
    start = Path(stored).resolve()
    try:
        named = resolve_model_dir(asked).resolve()
    except PixelforgeError:
        return False
    given = Path(asked)
    return named == start or (runs.is_run_dir(given) and start.is_relative_to(given.resolve()))


def prepare_run(
    family_name: str | None,
    data: str | None,
    out: Path,
    *,
    config_file: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    init: str | None = None,
) -> tuple[RunSpec, bool]:
    """Decide the run's configuration. Returns (spec, resumed)."""
    overrides = overrides or {}
    config_file = config_file or {}
    _check_sections(config_file, "--config")
    stored = read_run(out) if runs.is_run_dir(out) else None
    if stored is not None:
        overrides = place_bare_keys(overrides, stored.family, "--set")
    elif family_name is not None:
        overrides = place_bare_keys(overrides, get_family(family_name), "--set")
    _check_sections(overrides, "--set")
    asked = merge(config_file, overrides)

    if stored is not None:
        if family_name is not None and family_name != stored.family.name:
            raise ConfigError(
                f"{out} is a {stored.family.name} run; it cannot continue as {family_name}. "
                "Choose another --out for a new run."
            )
        if data is not None and _absolute(data) != _absolute(stored.data):
            raise ConfigError(
                f"{out} was trained on '{stored.data}', not '{data}'. "
                "Choose another --out for a new run on other data."
            )
        if init is not None and not _same_init(init, stored.init):
            start = f"it started from {stored.init}" if stored.init else "it started from scratch"
            raise ConfigError(
                f"--init {init} starts a new run, but {out} already holds one ({start}): leave "
                "--init out to resume it, or choose another --out for a new run."
            )
        doc = stored.to_json()["config"]
        asked_model = _resolve_nulls(stored, asked.get("model", {}))
        conflicts = _conflicts("model", doc["model"], asked_model)
        conflicts += _conflicts("data", doc["data"], asked.get("data", {}))
        if conflicts:
            raise ConfigError(
                f"{out} is an existing run and these are fixed for it: {'; '.join(conflicts)}. "
                "Drop those settings to resume, or choose another --out for a new run."
            )
        train: Any = from_dict(
            stored.family.train_config_cls,
            merge(doc["train"], asked.get("train", {})),
            where="train",
        )
        latest = runs.latest_checkpoint(out)
        if latest is not None and train.steps < latest[0]:
            raise ConfigError(
                f"{out} has trained {latest[0]} steps already, more than train.steps="
                f"{train.steps}: a run does not go back. Its model is "
                f"{latest[1] / runs.MODEL_SUBDIR}; give a higher --steps to train on."
            )
        return dataclasses.replace(stored, train=train), True

    if family_name is None:
        raise ConfigError(f"{out} holds no run yet: name a family (pixelforge train FAMILY ...).")
    if data is None:
        raise ConfigError(
            "a new run needs --data (for example --data digits; see `pixelforge data list`)."
        )
    data = _absolute(data)
    family = get_family(family_name)
    values = merge(default_config(family), asked)
    init_dir = None
    if init is not None:
        from pixelforge.hub import read_model_meta, resolve_model_dir

        init_dir = resolve_model_dir(init)
        meta = read_model_meta(init_dir)
        if meta["family"] != family.name:
            raise ConfigError(f"--init {init} is a {meta['family']} model, not {family.name}.")
        asked_model = dict(asked.get("model", {}))
        # a fully convolutional model may go on training on crops of another size; a family
        # may free other fields that do not shape the weights
        free = family.init_free + (("image_size",) if family.kind == "image2image" else ())
        anew = {k: asked_model.pop(k) for k in free if k in asked_model}
        conflicts = _conflicts("model", meta["config"], asked_model, f"--init {init}")
        if conflicts:
            raise ConfigError(
                f"--init fixes the architecture; these conflict with it: {'; '.join(conflicts)}. "
                "Drop those settings to train on from the model's, or --init a model made with "
                "them."
            )
        values["model"] = {**meta["config"], **anew}
    model, train, data_config = _build(family, values)
    if family.open_data is not None:  # a family with its own data kind fills its own fields
        model = family.open_data(data, model, train).resolve_model(model)
    else:
        model = resolve_from_data(model, inspect_dataset(data, data_config))
    return RunSpec(
        family, data, model, train, data_config, str(init_dir) if init_dir else None
    ), False
