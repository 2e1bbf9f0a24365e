"""Checks every registered family passes with its tiny config: shapes, save/load, train, resume."""

from __future__ import annotations

import pytest
import torch

from pixelforge import hub, runs
from pixelforge.errors import ConfigError
from pixelforge.registry import get_family, list_families
from pixelforge.tasks.image2image import apply_model
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import make_image_folder, make_scene_folder, tiny_spec

FAMILIES = [f.name for f in list_families()]


@pytest.mark.parametrize("family", FAMILIES)
def test_two_steps_then_resume_to_four(family, tmp_path):
    spec = tiny_spec(family, tmp_path)
    Trainer(spec, tmp_path, progress=False).fit()
    assert [s for s, _ in runs.list_checkpoints(tmp_path)][-1] == spec.train.steps

    more, resumed = prepare_run(None, None, tmp_path, overrides={"train": {"steps": 4}})
    trainer = Trainer(more, tmp_path, progress=False)
    trainer.fit()
    assert resumed and trainer.step == 4


@pytest.mark.parametrize("family", [f for f in FAMILIES if get_family(f).kind == "image2image"])
def test_fid_during_training_is_refused_for_models_that_sample_nothing(family, tmp_path):
    # train.eval_every scores FID of samples from noise: such a run stopped at its first
    # evaluation, losing the steps since its last checkpoint
    spec = tiny_spec(family, tmp_path / "run", train={"eval_every": 1})
    with pytest.raises(ConfigError, match="generates none"):
        Trainer(spec, tmp_path / "run", progress=False)


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_model_reloads_with_identical_output_and_right_shapes(family, tmp_path):
    spec = tiny_spec(family, tmp_path)
    trainer = Trainer(spec, tmp_path, progress=False)
    trainer.fit()
    model = trainer.task.export()
    hub.save_model(model, tmp_path / "model")
    loaded = hub.load(tmp_path / "model")
    again = hub.load(tmp_path)  # the run dir: latest EMA weights
    cfg = spec.model
    if get_family(family).kind == "image2image":
        _check_translation(model, loaded, again)
        return
    if get_family(family).kind == "radiance-field":
        _check_rendering(model, loaded, again, spec)
        return
    a = loaded.sample(3, seed=7)
    assert a.shape == (3, cfg.channels, cfg.image_size, cfg.image_size)
    assert torch.equal(a, model.sample(3, seed=7))
    assert torch.equal(a, again.sample(3, seed=7))
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, loaded.sample(3, seed=8))


def _check_translation(model, loaded, again) -> None:
    """Image-to-image models: same output after reloading, the promised output size for an
    input of another size and aspect ratio, and values in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 13, 22, generator=g)
    mask = torch.zeros(1, 13, 22)
    mask[:, 4:9, 6:15] = 1
    m = mask if model.takes_mask else None
    a = apply_model(loaded, image, mask=m)
    assert a.shape[-2:] == (13 * model.scale, 22 * model.scale)
    assert a.shape[0] in (1, 3)
    assert torch.equal(a, apply_model(model, image, mask=m))
    assert torch.equal(a, apply_model(again, image, mask=m))
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def _check_rendering(model, loaded, again, spec) -> None:
    """Radiance fields: the scene's box and background in the config, the same render after
    reloading, deterministic in eval mode, values in [0, 1]."""
    from pixelforge.nerf.render import render_image
    from pixelforge.nerf.scenes import load_scene
    from pixelforge.training.nerf import scene_path

    scene = load_scene(scene_path(spec.data))
    assert spec.model.aabb == tuple(scene.aabb.reshape(-1).tolist())
    assert spec.model.background == scene.background
    camera = scene.splits["val"].cameras[0].scaled(0.5)
    model.eval()
    a = render_image(loaded, camera)
    assert a["rgb"].shape == (8, 8, 3) and a["depth"].shape == (8, 8, 1)
    for other in (model, loaded, again):
        assert torch.equal(a["rgb"], render_image(other, camera)["rgb"])
    assert float(a["rgb"].min()) >= 0.0 and float(a["rgb"].max()) <= 1.0


def _tiny_args(family: str) -> list[str]:
    """The family's tiny config as --set flags (lists in JSON)."""
    import json

    args: list[str] = []
    for section, values in get_family(family).tiny.items():
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, list | bool) else str(value)
            args += ["--set", f"{section}.{key}={text}"]
    return args


@pytest.mark.parametrize("family", FAMILIES)
def test_trains_on_a_user_folder_and_samples_from_the_cli(family, tmp_path, cli):
    from PIL import Image

    fam = get_family(family)
    kind = "folder" if fam.data_kind == "images" else fam.data_kind
    if kind == "scene":
        data = make_scene_folder(tmp_path / "scene")
    else:
        data = make_image_folder(tmp_path / "images", kind)
    run = tmp_path / "run"
    code, _, err = cli(
        "train", family, "--data", data, "--out", run, "--no-progress",
        "--set", "train.device=cpu", *_tiny_args(family),
    )  # fmt: skip
    assert code == 0, err
    if fam.kind == "radiance-field":  # no sampling from noise: render a held-out view
        from pixelforge.nerf.render import render_image
        from pixelforge.nerf.scenes import load_scene

        camera = load_scene(tmp_path / "scene").splits["test"].cameras[0]
        out = render_image(hub.load(run), camera)
        assert out["rgb"].shape == (16, 16, 3)
        return
    if fam.kind == "image2image":  # no sampling from noise: translate an image instead
        model = hub.load(run)
        out = apply_model(model, torch.rand(3, 10, 12), mask=_mask_for(model))
        assert out.shape[-2:] == (10 * model.scale, 12 * model.scale)
        return
    code, _, err = cli("sample", run, "--n", 4, "--out", tmp_path / "grid", "--seed", 1)
    assert code == 0, err
    written = sorted((tmp_path / "grid").glob("*.png"))
    assert len(written) == 4
    size = fam.tiny["model"]["image_size"]
    with Image.open(written[0]) as im:
        assert im.size == (size, size) and im.mode == "RGB"


def _mask_for(model):
    if not model.takes_mask:
        return None
    mask = torch.zeros(1, 10, 12)
    mask[:, 2:6, 3:8] = 1
    return mask
