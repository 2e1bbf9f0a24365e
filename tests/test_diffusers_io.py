"""`pixelforge export diffusers` / `pixelforge import diffusers`: folders diffusers loads, and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from pixelforge.cli.main import app
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.hub import load, save_model
from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel, unet_kwargs
from pixelforge.tasks.diffusers_io import export_diffusers, import_diffusers


def tiny(num_classes: int = 0, seed: int = 0, **changes: Any) -> DiffusionModel:
    cfg: dict[str, Any] = dict(
        image_size=8,
        channels=1,
        num_classes=num_classes,
        block_out_channels=(8, 16),
        layers_per_block=1,
        attention=False,
        num_train_timesteps=100,
    )
    torch.manual_seed(seed)
    model = DiffusionModel(DiffusionConfig(**(cfg | changes))).eval()
    with torch.no_grad():  # a freshly built UNet zero-initialises its last conv: randomise all
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def inputs(k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 7, 50, 99])
    labels = torch.tensor([0, 1, 2, 3]) if k else None  # 3 = the null class
    return x, t, labels


def test_unconditional_export_is_a_ddpm_pipeline_that_samples(tmp_path):
    from diffusers import DDPMPipeline

    model = tiny(prediction="v_prediction", beta_schedule="squaredcos_cap_v2")
    out = export_diffusers(model, tmp_path / "pipe")
    assert (out / "model_index.json").is_file()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    pipe = DDPMPipeline.from_pretrained(out)
    sched = pipe.scheduler.config
    assert (sched.num_train_timesteps, sched.beta_schedule, sched.prediction_type) == (
        100,
        "squaredcos_cap_v2",
        "v_prediction",
    )
    x, t, _ = inputs(0)
    with torch.no_grad():
        assert torch.equal(pipe.unet(x, t).sample, model.predict(x, t, None))
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        batch_size=2,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (2, 8, 8, 1)
    assert ((images >= 0) & (images <= 1)).all()


def test_conditional_export_is_a_unet_with_the_null_class_documented(tmp_path):
    from diffusers import UNet2DModel

    model = tiny(num_classes=3)
    out = export_diffusers(model, tmp_path / "cond")
    assert not (out / "model_index.json").exists()  # no class-conditional pixel pipeline
    note = json.loads((out / "pixelforge.json").read_text())
    assert note["null_class"] == 3 and note["class_labels"] == "0..2"
    assert "null" in (out / "README.md").read_text()
    assert (out / "scheduler" / "scheduler_config.json").is_file()
    unet = UNet2DModel.from_pretrained(out / "unet").eval()
    assert unet.config.num_class_embeds == 4
    x, t, labels = inputs(3)
    with torch.no_grad():
        ours, theirs = model.predict(x, t, labels), unet(x, t, class_labels=labels).sample
    assert (ours - theirs).abs().max() <= 1e-5
    assert ours.abs().mean() > 1e-3  # not trivially zero


@pytest.mark.parametrize("k", [0, 3])
def test_export_then_import_gives_the_same_model(tmp_path, k):
    model = tiny(num_classes=k, prediction="v_prediction")
    export_diffusers(model, tmp_path / "out")
    back = import_diffusers(tmp_path / "out")
    assert back.config == model.config
    x, t, labels = inputs(k)
    with torch.no_grad():
        assert torch.equal(back.predict(x, t, labels), model.predict(x, t, labels))
    # the bare unet folder imports too (schedule found next to it)
    assert import_diffusers(tmp_path / "out" / "unet").config == model.config


def test_a_plain_diffusers_unet_folder_imports_with_default_schedule(tmp_path):
    from diffusers import UNet2DModel

    cfg = DiffusionConfig(image_size=16, channels=3, num_classes=0, block_out_channels=(32, 64))
    torch.manual_seed(0)
    unet = UNet2DModel(**unet_kwargs(cfg)).eval()
    unet.save_pretrained(tmp_path / "bare")
    model = import_diffusers(tmp_path / "bare")
    assert model.config == cfg  # attention on; epsilon, linear, 1000 steps
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.predict(x, 3, None), unet(x, 3).sample)


def _edit_config(folder: Path, **changes: Any) -> None:
    path = folder / "unet" / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"_class_name": "UNet2DConditionModel", "cross_attention_dim": 768}, "cross-attention"),
        (
            {
                "down_block_types": ["SkipDownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "SkipUpBlock2D"],
            },
            "down_block_types",
        ),
        ({"time_embedding_type": "fourier"}, "time_embedding_type"),
        ({"in_channels": 4, "out_channels": 4}, "in_channels"),
        ({"sample_size": 12}, "image_size"),
        ({"class_embed_type": "timestep"}, "class_embed_type"),
    ],
)
def test_unsupported_diffusers_configs_are_clear_errors(tmp_path, changes, named):
    export_diffusers(tiny(), tmp_path / "m")
    _edit_config(tmp_path / "m", **changes)
    with pytest.raises(ConfigError, match=named) as info:
        import_diffusers(tmp_path / "m")
    assert "config.json" in str(info.value)


def test_unsupported_scheduler_is_named(tmp_path):
    export_diffusers(tiny(), tmp_path / "m")
    path = tmp_path / "m" / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"prediction_type": "sample"}))
    with pytest.raises(ConfigError, match="prediction_type"):
        import_diffusers(tmp_path / "m")


def test_pickled_weights_need_an_explicit_opt_in(tmp_path):
    model = tiny(num_classes=3)
    export_diffusers(model, tmp_path / "m")
    unet_dir = tmp_path / "m" / "unet"
    st = unet_dir / "diffusion_pytorch_model.safetensors"
    torch.save(model.unet.state_dict(), unet_dir / "diffusion_pytorch_model.bin")
    st.unlink()
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        import_diffusers(tmp_path / "m")
    back = import_diffusers(tmp_path / "m", allow_pickle=True)
    x, t, labels = inputs(3)
    with torch.no_grad():
        assert torch.equal(back.predict(x, t, labels), model.predict(x, t, labels))


def test_existing_output_is_refused_without_force_and_replaced_atomically(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        export_diffusers(tiny(), out)
    assert (out / "keep.txt").read_text() == "mine"
    export_diffusers(tiny(), out, force=True)
    assert not (out / "keep.txt").exists() and (out / "unet").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folders left
    (tmp_path / "empty").mkdir()
    export_diffusers(tiny(), tmp_path / "empty")  # an empty folder is fine


def test_cli_export_and_import_round_trip(tmp_path):
    model = tiny(num_classes=3)
    save_model(model, tmp_path / "model")
    runner = CliRunner()
    res = runner.invoke(app, ["export", "diffusers", str(tmp_path / "model"), str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert "UNet2DModel" in res.output
    res = runner.invoke(app, ["export", "diffusers", str(tmp_path / "model"), str(tmp_path / "d")])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
    res = runner.invoke(
        app, ["import", "diffusers", str(tmp_path / "d"), "--out", str(tmp_path / "back")]
    )
    assert res.exit_code == 0, res.output
    back = load(tmp_path / "back")
    x, t, labels = inputs(3)
    with torch.no_grad():
        assert torch.equal(back.predict(x, t, labels), model.predict(x, t, labels))
    assert (
        "diffusers"
        in json.loads((tmp_path / "back" / "config.json").read_text())["card"]["summary"]
    )


def test_cli_refuses_to_export_a_gan(tmp_path):
    res = CliRunner().invoke(app, ["export", "diffusers", "dcgan-digits", str(tmp_path / "d")])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)
    assert "only diffusion models" in str(res.exception)
    assert not (tmp_path / "d").exists()
