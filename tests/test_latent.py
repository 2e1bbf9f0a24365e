"""The latent-space lab: slerp/lerp, seeded interpolation, encode/inversion, directions,
neighbours, fingerprints and the refusals (another model's files, classes out of range)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from torch import nn

from pixelforge import hub, latent
from pixelforge.cli.latent import latent_app
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import read_image, read_provenance, write_png
from pixelforge.models.base import ImageGenerator
from pixelforge.models.dcgan import DCGAN, DCGANConfig
from pixelforge.models.vae import VAE, VAEConfig

# ---------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one thread is faster than two (and much faster on a busy box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dcgan(seed: int, num_classes: int = 0) -> DCGAN:
    torch.manual_seed(seed)
    cfg = DCGANConfig(
        image_size=8, channels=1, num_classes=num_classes, z_dim=8, g_width=8, d_width=8
    )
    return DCGAN(cfg).eval()


class TinyW(ImageGenerator):
    """A StyleGAN-like stand-in that only implements the lab hooks: z -> MLP -> w -> image."""

    family = "tiny-w"
    lab_space = "w"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.config = DCGANConfig(image_size=8, channels=1, num_classes=0, z_dim=6)
        self.mapping = nn.Sequential(nn.Linear(6, 6), nn.LeakyReLU(0.2), nn.Linear(6, 6))
        self.synthesis = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 64))

    def latent_shape(self) -> tuple[int, ...]:
        return (6,)

    def to_lab(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.mapping(z) + 1.0  # W is not centred on 0, so the mean start matters

    def from_lab(self, w: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return torch.tanh(4 * self.synthesis(w)).view(-1, 1, 8, 8)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.from_lab(self.to_lab(z, labels), labels)


def _planted_dataset(root: Path, n: int = 24) -> Path:
    """8x8 grey images with a random gradient; class `mark` has a bright 3x3 top-left square."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:8, 0:8]
    for cls in ("mark", "plain"):
        for i in range(n):
            a, b = rng.uniform(-12, 12, 2)
            img = np.clip(90 + a * xx + b * yy, 0, 255)
            img[:3, :3] = 250 if cls == "mark" else 20
            write_png(root / cls / f"{i:03d}.png", img.astype(np.uint8)[:, :, None])
    return root


def _train_ae(images: torch.Tensor, steps: int = 250) -> VAE:
    """A small deterministic autoencoder (VAE family, variational=False) fitted to ``images``."""
    torch.manual_seed(0)
    # width=16: with width 8 the safetensors header is 640 bytes long, whose first bytes (80 02)
    # hub.sniff_format mistakes for a pickle, so the saved model would not load (a hub.py bug).
    model = VAE(VAEConfig(image_size=8, channels=1, latent_dim=4, width=16, d_width=0,
                          variational=False))  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        rec = model.decode(model.encode(images)[0])
        loss = (rec - images).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(data spec, trained AE, saved model dir) on the planted-attribute folder dataset."""
    from pixelforge.data import DataConfig, open_dataset

    root = _planted_dataset(tmp_path_factory.mktemp("planted"))
    spec = f"folder:{root}"
    ds = open_dataset(spec, image_size=8, channels=1, config=DataConfig())
    model = _train_ae(ds.get_batch(torch.arange(len(ds)))["image"])
    model_dir = hub.save_model(model, tmp_path_factory.mktemp("ae") / "model")
    return spec, root, model, model_dir


@pytest.fixture(scope="module")
def digits_gan():
    return hub.load("dcgan-digits")


@pytest.fixture
def lab_cli(cli, monkeypatch):
    """The real CLI runner (one-line errors, exit codes) on an app that includes `latent`.

    Once main.py has ``app.add_typer(latent_app, name="latent")`` this fixture can use
    ``cli`` directly.
    """
    from pixelforge.cli import main as cli_main

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(latent_app, name="latent")
    monkeypatch.setattr(cli_main, "app", app)
    return cli


# ---------------------------------------------------------------------------- spaces


def test_slerp_ends_are_the_seed_latents_and_midpoints_keep_the_gaussian_norm():
    model = _dcgan(0)
    d = 512
    a = torch.randn(d, generator=torch.Generator().manual_seed(1))
    b = torch.randn(d, generator=torch.Generator().manual_seed(2))
    path = latent.slerp(a, b, torch.linspace(0, 1, 9))
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    norms = path.norm(dim=1)
    assert (norms - math.sqrt(d)).abs().max() < 0.1 * math.sqrt(d)
    mid_lerp = latent.lerp(a, b, 0.5)
    assert mid_lerp.norm() < 0.8 * math.sqrt(d)  # what slerp avoids: the low-density centre
    # Seeds: the ends of the lab path are the latents sample(seed) draws.
    r = latent.interpolate(model, seeds=(4, 9), steps=5)
    assert r.space == "gaussian"
    assert torch.equal(r.latents[0], model.sample_latents(1, 4)[0])
    assert torch.equal(r.latents[-1], model.sample_latents(1, 9)[0])


def test_interpolation_frames_start_and_end_at_the_seeds_samples(digits_gan):
    r = latent.interpolate(digits_gan, seeds=(5, 6), steps=4, class_label=3)
    assert r.images.shape == (4, 1, 32, 32)
    a = digits_gan.sample(1, seed=5, class_label=3)[0]
    b = digits_gan.sample(1, seed=6, class_label=3)[0]
    assert torch.allclose(r.images[0], a, atol=1e-5)
    assert torch.allclose(r.images[-1], b, atol=1e-5)
    assert not torch.allclose(r.images[1], a, atol=1e-2)


def test_w_space_uses_lerp_and_inversion_from_the_mean_recovers_a_generated_image():
    model = TinyW().eval()
    r = latent.interpolate(model, seeds=(1, 2), steps=3)
    wa, wb = r.latents[0], r.latents[-1]
    with torch.no_grad():
        assert torch.allclose(wa, model.to_lab(model.sample_latents(1, 1), None)[0])
        assert torch.allclose(r.images[0], model.sample(1, seed=1)[0], atol=1e-6)
    assert torch.allclose(r.latents[1], (wa + wb) / 2, atol=1e-6)
    with torch.no_grad():
        target = model.from_lab(wb[None], None)
    inv = latent.invert(model, target, steps=150, lr=0.05, restarts=2)
    assert inv.mse_start[0] > 1e-3
    assert inv.mse[0] < inv.mse_start[0] / 20
    assert inv.mse[0] < 2e-4


def test_gan_inversion_reduces_the_error_and_reconstructs_a_generated_digit(digits_gan):
    labels = torch.tensor([7])
    z = digits_gan.sample_latents(1, 11)
    with torch.no_grad():
        target = digits_gan.generate(z, labels)
    inv = latent.invert(digits_gan, target, labels, steps=40, restarts=1, lr=0.08)
    assert inv.method == "optimisation"
    assert inv.mse[0] < inv.mse_start[0] / 5
    assert inv.mse[0] < 3e-3  # PSNR above ~25 dB
    with pytest.raises(ConfigError, match="class-conditional"):
        latent.invert(digits_gan, target, None, steps=1)


def test_diffusion_interpolates_between_seeds_but_is_not_encoded(tmp_path):
    from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel

    torch.manual_seed(0)
    cfg = DiffusionConfig(image_size=8, channels=1, num_classes=0, block_out_channels=(8, 16),
                          layers_per_block=1, attention=False, num_train_timesteps=50)  # fmt: skip
    model = DiffusionModel(cfg).eval()
    r = latent.interpolate(model, seeds=(1, 2), steps=3)  # 50 DDIM steps from slerped noise
    assert torch.allclose(r.images[0], model.sample(1, seed=1)[0], atol=1e-5)
    assert torch.allclose(r.images[-1], model.sample(1, seed=2)[0], atol=1e-5)
    with pytest.raises(PixelforgeError, match="encode is not supported for diffusion models"):
        latent.invert(model, torch.zeros(1, 1, 8, 8))
    write_png(tmp_path / "q.png", np.zeros((8, 8, 1), np.uint8))
    with pytest.raises(PixelforgeError, match="encode is not supported for diffusion models"):
        latent.neighbors(model, tmp_path / "q.png", "digits", k=2)


# ---------------------------------------------------------------------------- VAE, directions


def test_vae_encoder_reconstructs_its_training_image_better_than_noise(planted, tmp_path):
    _, root, model, _ = planted
    own = root / "plain" / "000.png"
    noise = tmp_path / "noise.png"
    write_png(noise, np.random.default_rng(1).integers(0, 256, (8, 8, 1), dtype=np.uint8))
    a = latent.encode(model, own, out=tmp_path / "own.safetensors")
    b = latent.encode(model, noise)
    assert a.method == "encoder"
    assert float(a.mse[0]) < float(b.mse[0]) / 3
    assert a.psnr[0] > b.psnr[0]
    saved, label = latent.load_latent(tmp_path / "own.safetensors", model)
    assert torch.equal(saved, a.latents[0]) and label is None
    # Optimising from the encoder's start point can only improve the reconstruction.
    c = latent.encode(model, noise, steps=30)
    assert c.method == "encoder+optimisation" and float(c.mse[0]) < float(b.mse[0])


def test_direction_moves_the_planted_attribute(planted, tmp_path):
    spec, root, model, _ = planted
    d = latent.direction(model, spec, "mark", out=tmp_path / "mark.safetensors")
    assert d.method == "encoder" and d.counts == {"attribute": 24, "versus": 24}
    images = latent.edit(
        model, tmp_path / "mark.safetensors", image=root / "plain" / "003.png",
        strength=1.0, frames=3,
    )  # fmt: skip
    corner = images[:, 0, :3, :3].mean(dim=(1, 2))  # at strengths -1, 0, +1
    assert corner[2] > corner[1] + 0.3  # adding the direction paints the square in
    rest = images[:, 0, 4:, 4:].mean(dim=(1, 2))
    assert (rest[2] - rest[1]).abs() < (corner[2] - corner[1]) / 3  # and little else
    with pytest.raises(ConfigError, match="not a label"):
        latent.direction(model, spec, "glasses")


def test_neighbors_of_a_training_image_start_with_itself(planted):
    spec, root, model, _ = planted
    nb = latent.neighbors(model, root / "mark" / "005.png", spec, k=3)
    assert nb.indices[0] == 5 and nb.distances[0] < 1e-4
    assert nb.labels == [0, 0, 0]  # the nearest ones share the planted mark
    assert nb.grid_images().shape == (4, 1, 8, 8)
    px = latent.neighbors(model, root / "mark" / "005.png", spec, k=2, space="pixel")
    assert px.indices[0] == 5 and "pixels" in px.space
    # eval memorization spells it "pixels": the same word works in both
    again = latent.neighbors(model, root / "mark" / "005.png", spec, k=2, space="pixels")
    assert again.indices == px.indices and again.space == px.space


# ---------------------------------------------------------------------------- identity, refusals


def test_fingerprint_is_the_saved_weights_hash(planted):
    _, _, model, model_dir = planted
    assert latent.model_fingerprint(model) == latent.model_fingerprint(model_dir)
    assert latent.model_fingerprint(hub.load(model_dir)) == latent.model_fingerprint(model)
    assert latent.model_fingerprint(_dcgan(0)) != latent.model_fingerprint(_dcgan(1))


def test_another_models_latent_and_direction_files_are_refused(tmp_path):
    a, b = _dcgan(0), _dcgan(1)
    latent.save_latent(tmp_path / "a.safetensors", a, a.sample_latents(1, 0)[0])
    with pytest.raises(PixelforgeError, match="belongs to another model"):
        latent.interpolate(b, start=tmp_path / "a.safetensors", end=1)
    latent.interpolate(a, start=tmp_path / "a.safetensors", end=1, steps=2)  # its own: fine
    from pixelforge.latent.direction import Direction, save_direction

    save_direction(tmp_path / "d.safetensors", Direction(torch.ones(8), "x", "rest", "test"), a)
    with pytest.raises(PixelforgeError, match="belongs to another model"):
        latent.edit(b, tmp_path / "d.safetensors", seed=0)
    with pytest.raises(PixelforgeError, match="not a latent file"):
        latent.interpolate(a, start=tmp_path / "d.safetensors", end=1)


def test_classes_out_of_range_and_unsupported_models_are_refused(digits_gan):
    with pytest.raises(ConfigError, match="between 0 and 9"):
        latent.interpolate(digits_gan, seeds=(0, 1), class_label=10)
    with pytest.raises(ConfigError, match="class-conditional"):
        latent.interpolate(digits_gan, seeds=(0, 1))
    with pytest.raises(ConfigError, match="unconditional"):
        latent.interpolate(_dcgan(0), seeds=(0, 1), class_label=1)


# ---------------------------------------------------------------------------- command line


def test_cli_interpolate_encode_edit_neighbors(planted, tmp_path, lab_cli):
    spec, root, _, model_dir = planted
    strip = tmp_path / "strip.png"
    code, out, err = lab_cli("latent", "interpolate", model_dir, "--seeds", 1, 2, "--steps", 5,
                             "--out", strip)  # fmt: skip
    assert code == 0, err
    assert read_image(strip, mode="L").shape[1] == 5 * 10 + 2  # 5 frames of 8 px, padding 2
    assert "pixelforge latent interpolate" in read_provenance(strip)["command"]
    code, out, err = lab_cli("latent", "interpolate", model_dir, "--seeds", 1, 2, "--steps", 4,
                             "--out", tmp_path / "a.gif")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "a.gif").read_bytes()[:3] == b"GIF"
    lat = tmp_path / "q.safetensors"
    code, out, err = lab_cli("latent", "encode", model_dir, root / "plain" / "001.png",
                             "--out", lat)  # fmt: skip
    assert code == 0, err
    assert "MSE" in out and "PSNR" in out and lat.is_file()
    code, out, err = lab_cli("latent", "interpolate", model_dir, "--from", lat, "--to", lat,
                             "--steps", 2, "--out", tmp_path / "same.png")  # fmt: skip
    assert code == 0, err
    dfile = tmp_path / "mark.safetensors"
    code, out, err = lab_cli("latent", "direction", model_dir, "--data", spec,
                             "--attribute", "mark", "--out", dfile)  # fmt: skip
    assert code == 0, err
    assert "via encoder" in out and dfile.is_file()
    code, out, err = lab_cli("latent", "edit", model_dir, "--seed", 3, "--direction", dfile,
                             "--strength", 1, "--out", tmp_path / "edit.png")  # fmt: skip
    assert code == 0, err
    code, out, err = lab_cli("latent", "neighbors", model_dir, root / "mark" / "002.png",
                             "--data", spec, "-k", 3, "--out", tmp_path / "nn.png")  # fmt: skip
    assert code == 0, err
    assert "1. index 2 " in out and (tmp_path / "nn.png").is_file()


def test_cli_errors_are_one_line_with_a_non_zero_exit(planted, tmp_path, lab_cli):
    model_dir = planted[3]
    other = _dcgan(5)
    latent.save_latent(tmp_path / "o.safetensors", other, torch.zeros(8))
    cases = [
        ("interpolate", model_dir, "--from", tmp_path / "o.safetensors", "--to",
         tmp_path / "o.safetensors", "--out", tmp_path / "x.png"),
        ("interpolate", "dcgan-digits", "--seeds", 0, 1, "--class", 12, "--out", tmp_path / "x.png"),
        ("interpolate", model_dir, "--seeds", 0, 1, "--out", tmp_path / "x.jpg"),
        ("encode", model_dir, tmp_path / "missing.png"),
        ("edit", model_dir, "--seed", 0, "--direction", tmp_path / "o.safetensors",
         "--out", tmp_path / "x.png"),
    ]  # fmt: skip
    for args in cases:
        code, _, err = lab_cli("latent", *args)
        assert code != 0, args
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert lines and lines[0].startswith("error:"), (args, err)
        assert "Traceback" not in err
