"""Radiance fields: rendering math, sampling, encoding, and both models fitting a tiny scene."""

from __future__ import annotations

import math

import pytest
import torch

from pixelforge import hub
from pixelforge.nerf.cameras import Cameras, look_at
from pixelforge.nerf.encoding import encoded_size, positional_encoding
from pixelforge.nerf.grid import GridField, NerfGridConfig
from pixelforge.nerf.mlp import NerfMLP, NerfMLPConfig
from pixelforge.nerf.render import (
    alpha_weights,
    composite,
    deltas_from_samples,
    ray_box,
    render_image,
    sample_pdf,
    stratified_samples,
)

WHITE = torch.ones(3)


def _slab_render(sigma_value: float) -> dict[str, torch.Tensor]:
    """Two rays through a slab of density ``sigma_value`` between t = 4 and t = 5, coloured red."""
    t, _ = stratified_samples(torch.zeros(2), torch.full((2,), 10.0), 2000)
    sigma = torch.where((t >= 4) & (t < 5), sigma_value, 0.0)
    rgb = torch.zeros(*t.shape, 3)
    rgb[..., 0] = 1.0
    weights = alpha_weights(sigma, deltas_from_samples(t, torch.full((2,), 10.0)))
    return composite(weights, rgb, t, WHITE)


def test_an_opaque_slab_gives_its_depth_and_colour_and_full_opacity():
    out = _slab_render(1e4)
    assert torch.allclose(out["acc"], torch.ones(2), atol=1e-4)
    assert torch.allclose(out["depth"], torch.full((2,), 4.0), atol=0.01)
    assert torch.allclose(out["rgb"], torch.tensor([[1.0, 0.0, 0.0]] * 2), atol=1e-4)


def test_a_thin_slab_lets_light_through_as_beer_lambert_says():
    out = _slab_render(0.5)  # transmittance through 1 unit: exp(-0.5)
    acc = 1 - math.exp(-0.5)
    assert torch.allclose(out["acc"], torch.full((2,), acc), atol=1e-3)
    assert torch.allclose(out["rgb"][:, 1], torch.full((2,), 1 - acc), atol=1e-3)  # white behind
    assert (
        4.0 < float(out["depth"][0]) < 4.5
    )  # expected depth within the slab, weighted to its front


def test_empty_space_gives_no_opacity_and_the_background():
    out = _slab_render(0.0)
    assert torch.equal(out["acc"], torch.zeros(2))
    assert torch.allclose(out["rgb"], WHITE.expand(2, 3))
    assert torch.equal(out["depth"], torch.zeros(2))


def test_ray_box_entry_and_exit():
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    o = torch.tensor([[0.0, 0.0, -5.0], [0.0, 3.0, -5.0], [0.0, 0.0, 0.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    near, far, hit = ray_box(o, d, box)
    assert hit.tolist() == [True, False, True]
    assert torch.allclose(near[[0, 2]], torch.tensor([4.0, 0.0]))  # starts inside: near = 0
    assert torch.allclose(far[[0, 2]], torch.tensor([6.0, 1.0]))


def test_hierarchical_samples_land_where_the_weights_are():
    bins = torch.linspace(0.0, 8.0, 9).expand(3, 9)
    weights = torch.zeros(3, 8)
    weights[:, 5] = 1.0  # all weight in [5, 6)
    for uniform in (None, torch.rand(3, 64, generator=torch.Generator().manual_seed(0))):
        t = sample_pdf(bins, weights, 64, uniform)
        inside = ((t >= 5) & (t <= 6)).float().mean()
        assert float(inside) > 0.99
        assert torch.equal(t, t.sort(dim=-1).values)
    # two equal peaks get half the samples each
    weights[:, 1] = 1.0
    t = sample_pdf(bins, weights, 100)
    assert abs(float(((t >= 1) & (t <= 2)).float().mean()) - 0.5) < 0.02


def test_positional_encoding_frequencies():
    x = torch.tensor([[0.1, -0.3, 0.7]])
    enc = positional_encoding(x, 3)
    assert enc.shape == (1, encoded_size(3, 3)) == (1, 21)
    assert torch.equal(enc[:, :3], x)
    for k in range(3):
        block = enc[0, 3 + 6 * k : 3 + 6 * (k + 1)]
        assert torch.allclose(block[:3], torch.sin(2**k * math.pi * x[0]), atol=1e-6)
        assert torch.allclose(block[3:], torch.cos(2**k * math.pi * x[0]), atol=1e-6)
    # the highest frequency has period 2 / 2^(L-1) = 0.5 here
    assert torch.allclose(positional_encoding(x + 0.5, 3)[:, -6:], enc[:, -6:], atol=1e-5)
    assert positional_encoding(x, 0, include_input=False).shape == (1, 0)


# ---------------------------------------------------------------------- a tiny scene to fit

BOX = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])


def _box_scene(n: int = 16, size: int = 12) -> tuple[Cameras, torch.Tensor]:
    """``n`` views of a cube coloured by its faces' axes, on white, from radius 3."""
    angles = torch.arange(n) * (2 * math.pi / n)
    eye = torch.stack([3 * angles.cos(), 3 * angles.sin(), 1.2 * torch.ones(n)], dim=-1)
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    cams = Cameras.from_fov(c2w, size, size, 0.7)
    o, d = cams.rays()
    near, _, hit = ray_box(o.reshape(-1, 3), d.reshape(-1, 3), BOX)
    p = o.reshape(-1, 3) + near[:, None] * d.reshape(-1, 3)
    face = (p.abs() - 0.5).abs().argmin(dim=-1)  # the axis of the face hit
    colour = torch.eye(3)[face] * 0.8 + 0.1
    rgb = torch.where(hit[:, None], colour, torch.ones(3))
    return cams, rgb.reshape(n, size, size, 3)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


def _render_all(model: torch.nn.Module, cams: Cameras) -> torch.Tensor:
    model.eval()
    return torch.stack([render_image(model, cams[i])["rgb"] for i in range(len(cams))])


def _fit(model: torch.nn.Module, cams: Cameras, rgb: torch.Tensor, steps: int, lr: float) -> None:
    o, d = cams.rays()
    o, d, target = o.reshape(-1, 3), d.reshape(-1, 3), rgb.reshape(-1, 3)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(o), (256,), generator=g)
        jitter = torch.rand(256, model.noise_size, generator=g)
        out = model.render_rays(o[idx], d[idx], jitter=jitter)
        loss = (out["rgb"] - target[idx]).square().mean()
        if "rgb_coarse" in out:
            loss = loss + (out["rgb_coarse"] - target[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _grid(**changes: object) -> GridField:
    torch.manual_seed(0)
    config = dict(
        aabb=(-1.0, -1.0, -1.0, 1.0, 1.0, 1.0), background=(1.0, 1.0, 1.0), resolution=24,
        density_components=4, color_components=4, color_features=8, hidden=16,
        occupancy_resolution=16, density_shift=-5.0,
    )  # fmt: skip
    config.update(changes)
    return GridField(NerfGridConfig(**config))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted_grid() -> tuple[GridField, Cameras, torch.Tensor, float]:
    cams, rgb = _box_scene()
    model = _grid()
    before = _psnr(_render_all(model, cams), rgb)
    _fit(model, cams, rgb, steps=150, lr=0.1)
    return model, cams, rgb, before


def test_grid_model_fits_a_tiny_scene(fitted_grid):
    model, cams, rgb, before = fitted_grid
    after = _psnr(_render_all(model, cams), rgb)
    assert after > before + 8 and after > 20, (before, after)


def test_mlp_model_fits_a_tiny_scene():
    torch.manual_seed(0)
    cams, rgb = _box_scene()
    config = NerfMLPConfig(
        aabb=(-1.0, -1.0, -1.0, 1.0, 1.0, 1.0), background=(1.0, 1.0, 1.0), width=32, depth=3,
        skip=2, pos_freqs=4, dir_freqs=2, coarse_samples=16, fine_samples=16,
    )  # fmt: skip
    model = NerfMLP(config)
    before = _psnr(_render_all(model, cams), rgb)
    _fit(model, cams, rgb, steps=150, lr=5e-3)
    after = _psnr(_render_all(model, cams), rgb)
    assert after > before + 5 and after > 18, (before, after)


def test_grid_upsampling_keeps_the_image(fitted_grid):
    model, cams, _, _ = fitted_grid
    model = _copy(model)
    reference = _render_all(model, cams)
    model.resize(40)
    assert model.resolution == 40 and model.density_planes.shape[-2:] == (40, 40)
    assert _psnr(_render_all(model, cams), reference) > 30


def test_shrinking_the_box_to_the_occupied_cells_keeps_the_image(fitted_grid):
    model, cams, _, _ = fitted_grid
    model = _copy(model)
    model.occupancy.zero_()
    model.occupancy[3:13, 3:13, 3:13] = True  # the cube [-0.5, 0.5]^3 and a cell of margin
    reference = _render_all(model, cams)
    assert model.shrink_to_occupied()
    assert torch.allclose(model.box, torch.tensor([[-0.75] * 3, [0.75] * 3]))
    assert model.resolution == 24
    assert _psnr(_render_all(model, cams), reference) > 25


def test_occupancy_grid_prunes_nothing_that_is_seen(fitted_grid):
    model, cams, _, _ = fitted_grid
    model = _copy(model)
    reference = _render_all(model, cams)
    model.update_occupancy()
    pruned = _render_all(model, cams)
    assert _psnr(pruned, reference) > 35


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    clone = type(model)(model.config)
    clone.load_state_dict(model.state_dict())
    return clone


@pytest.mark.parametrize("kind", ["grid", "mlp"])
def test_saved_model_renders_identically_and_deterministically(kind, tmp_path, fitted_grid):
    if kind == "grid":
        model = _copy(fitted_grid[0])
        model.resize(17)  # a resolution the config does not name: loading adopts it
    else:
        model = NerfMLP(NerfMLPConfig(aabb=(-1.0, -1.0, -1.0, 1.0, 1.0, 1.0), width=16, depth=2,
                                      skip=1, coarse_samples=8, fine_samples=8))  # fmt: skip
    cams, _ = _box_scene(n=1, size=6)
    model.eval()
    a = render_image(model, cams)
    assert a["rgb"].shape == (6, 6, 3) and a["depth"].shape == a["acc"].shape == (6, 6, 1)
    chunked = render_image(model, cams, chunk=7)["rgb"]  # the same up to matmul rounding
    assert torch.allclose(a["rgb"], chunked, atol=1e-5)
    hub.save_model(model, tmp_path / "m")
    loaded = hub.load(tmp_path / "m")
    b = render_image(loaded, cams)
    for key in ("rgb", "depth", "acc"):
        assert torch.equal(a[key], b[key])
    assert float(b["rgb"].min()) >= 0 and float(b["rgb"].max()) <= 1


def test_config_background_is_the_default_and_can_be_overridden(fitted_grid):
    model = _copy(fitted_grid[0]).eval()
    o = torch.tensor([[0.0, 0.0, 5.0]])
    d = torch.tensor([[1.0, 0.0, 0.0]])  # misses everything
    assert torch.equal(model.render_rays(o, d)["rgb"], torch.ones(1, 3))
    black = model.render_rays(o, d, background=torch.zeros(3))["rgb"]
    assert torch.equal(black, torch.zeros(1, 3))


def test_grid_run_resumes_bit_identical_across_upsampling_and_occupancy_updates(tmp_path):
    from pixelforge import runs
    from pixelforge.hub import read_safetensors
    from pixelforge.training.run import prepare_run
    from pixelforge.training.trainer import Trainer

    from conftest import tiny_spec

    schedule = {
        "steps": 6,
        "upsample_steps": [2, 5],
        "occupancy_every": 3,
        "l1_weight": 1e-3,
        "lr_schedule": "constant",
    }  # cosine would depend on the first run's steps
    ref = tiny_spec("nerf-grid", tmp_path / "ref", train=schedule)
    ref_trainer = Trainer(ref, tmp_path / "ref", progress=False)
    ref_trainer.fit()
    first = tiny_spec("nerf-grid", tmp_path / "cut", train={**schedule, "steps": 4})
    Trainer(first, tmp_path / "cut", progress=False).fit()
    more, resumed = prepare_run(None, None, tmp_path / "cut", overrides={"train": {"steps": 6}})
    trainer = Trainer(more, tmp_path / "cut", progress=False)
    trainer.fit()
    assert resumed and trainer.step == 6
    field = trainer.task.modules["field"]
    assert field.resolution == 8 and not bool(field.occupancy.all())  # the schedule ran
    states = [
        read_safetensors(runs.latest_checkpoint(d)[1] / runs.STATE_TENSORS)
        for d in (tmp_path / "ref", tmp_path / "cut")
    ]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
