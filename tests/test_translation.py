"""Image-to-image translation: pix2pix and CycleGAN training, exact resume with the image pools,
any-size translation, `pixelforge translate`, junyanz checkpoint import and whole-image
instance-norm statistics under tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixelforge import hub, runs
from pixelforge.errors import ConfigError, ModelLoadError, PixelforgeError
from pixelforge.models.cyclegan import CycleGAN, CycleGANConfig
from pixelforge.models.pix2pix import Pix2Pix, Pix2PixConfig
from pixelforge.nn.instance_stats import frozen_instance_norm
from pixelforge.tasks.image2image import apply_model
from pixelforge.tasks.tiling import run_tiled, tile_starts
from pixelforge.training.run import prepare_run
from pixelforge.training.trainer import Trainer

from conftest import tiny_spec


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors on a shared 2-core machine: one thread avoids spinning (conftest restores)."""
    torch.set_num_threads(1)


def _folders(root: Path) -> tuple[Path, Path]:
    """A paired (A/, B/) and an unpaired (trainA/, trainB/) folder of 8 small images each."""
    g = np.random.default_rng(0)
    paired, unpaired = root / "paired", root / "unpaired"
    for side in ("A", "B"):
        (paired / side).mkdir(parents=True)
        (unpaired / f"train{side}").mkdir(parents=True)
        for i in range(8):
            im = g.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(im).save(paired / side / f"{i}.png")
            im = g.integers(0, 256, (18 + i, 22, 3), dtype=np.uint8)
            Image.fromarray(im).save(unpaired / f"train{side}" / f"u{i}.png")
    return paired, unpaired


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    paired, unpaired = _folders(tmp_path_factory.mktemp("data"))
    return {"pix2pix": paired, "cyclegan": unpaired}


def _spec(family: str, data: dict[str, Path], out: Path, **train):
    kind = "paired" if family == "pix2pix" else "unpaired"
    model = {}
    if family == "pix2pix-dropout":  # deep enough for dropout levels (4 .. depth-2)
        family, kind = "pix2pix", "paired"
        model = {"image_size": 64, "depth": 6, "ngf": 2, "ndf": 4}
    return tiny_spec(family, out, dataset=f"{kind}:{data[family]}", train=train, model=model)


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan"])
def test_trains_two_steps_and_translates_another_size(family, data, tmp_path):
    spec = _spec(family, data, tmp_path, sample_every=2)
    Trainer(spec, tmp_path, progress=False).fit()
    assert [s for s, _ in runs.list_checkpoints(tmp_path)][-1] == 2
    from pixelforge.io.images import read_image

    grid = read_image(tmp_path / runs.SAMPLES / f"{runs.checkpoint_name(2)}.png")
    panels = 3 if family == "pix2pix" else 4  # A | G(A) | B (| G_ba(B)), 8 kept examples
    assert grid.shape == (3 * 18 + 2, 3 * (panels * 16 + 2) + 2, 3) and grid.std() > 10
    model = hub.load(tmp_path)  # the run dir: the latest checkpoint's model
    assert model.family == family and spec.model.image_size == 16
    image = torch.rand(3, 37, 53)  # not square, not a multiple of the size multiple
    out = apply_model(model, image)
    assert out.shape == (3, 37, 53)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    if family == "cyclegan":
        model.direction = "BtoA"
        back = apply_model(model, image)
        assert back.shape == (3, 37, 53) and not torch.equal(back, out)


def _final_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {
        f"{name}/{k}": v.clone()
        for name, module in trainer.task.modules.items()
        for k, v in module.state_dict().items()
    }
    for name, opt in trainer.task.optimizers.items():
        for idx, entry in opt.state_dict()["state"].items():
            for k, v in entry.items():
                if isinstance(v, torch.Tensor):
                    state[f"optim/{name}/{idx}/{k}"] = v.clone()
    return state


@pytest.mark.parametrize("family", ["pix2pix", "pix2pix-dropout", "cyclegan"])
def test_resume_is_bit_identical_including_the_image_pool(family, data, tmp_path):
    straight = tmp_path / "straight"
    t1 = Trainer(_spec(family, data, straight, steps=4), straight, progress=False)
    t1.fit()

    broken = tmp_path / "broken"
    Trainer(_spec(family, data, broken, steps=2), broken, progress=False).fit()
    more, resumed = prepare_run(None, None, broken, overrides={"train": {"steps": 4}})
    t2 = Trainer(more, broken, progress=False)
    t2.fit()
    assert resumed and t2.step == 4

    a, b = _final_state(t1), _final_state(t2)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if family == "cyclegan":
        # batch 8 into pools of 4: full after step 1, random swaps after that
        pool = t2.task.modules["pool_B"]
        assert int(pool.count) == 4 and float(pool.images.abs().sum()) > 0
        assert "module/pool_A/images" in _checkpoint_keys(broken)


def _checkpoint_keys(run: Path) -> set[str]:
    _, folder = runs.latest_checkpoint(run)
    return set(hub.read_safetensors(folder / runs.STATE_TENSORS))


def test_image_pool_draws_from_the_step_generator():
    from pixelforge.training.cyclegan import ImagePool
    from pixelforge.training.task import StepContext

    def ctx(seed: int) -> StepContext:
        return StepContext(
            step=0, generator=torch.Generator().manual_seed(seed), global_batch=6, offset=0,
            local_batch=6, device=torch.device("cpu"), autocast_dtype=None,
            optimize=lambda name, loss: True,
        )  # fmt: skip

    results = []
    for seed in (1, 1, 2):
        pool = ImagePool(3, 1, 2)
        pool.query(torch.arange(3.0)[:, None, None, None].expand(3, 1, 2, 2), ctx(0))  # fill
        out = pool.query(10 + torch.arange(6.0)[:, None, None, None].expand(6, 1, 2, 2), ctx(seed))
        results.append(out[:, 0, 0, 0].tolist())
    assert results[0] == results[1] and results[0] != results[2]
    assert any(v < 10 for v in results[0])  # some came out of the pool


def test_config_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="multiple of 2\\*\\*depth"):
        Pix2PixConfig(image_size=100)
    with pytest.raises(ConfigError, match="d_layers"):
        CycleGANConfig(image_size=16, d_layers=3)
    with pytest.raises(ConfigError, match="channels"):
        Pix2Pix(Pix2PixConfig())  # channels not yet taken from data


def test_pix2pix_translates_with_the_statistics_it_trained_with(tmp_path):
    # The paper trains at batch size 1 and tests with the test image's own statistics: a trained
    # step's normalisation and translate's must be the same function of the image.
    spec = tiny_spec("pix2pix", tmp_path)
    Trainer(spec, tmp_path, progress=False).fit()
    model = hub.load(tmp_path)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        translated = model.translate(x)
        model.generator.train()
        for m in model.generator.modules():
            if isinstance(m, nn.Dropout):
                m.eval()  # dropout is the paper's noise, off in both
        assert torch.allclose(model.generator(x), translated, atol=1e-6)


@pytest.mark.parametrize("family, kind", [("pix2pix", "paired"), ("cyclegan", "unpaired")])
def test_one_set_of_images_is_refused_before_the_run_is_written(tmp_path, family, kind):
    spec = tiny_spec(family, tmp_path / "run", dataset="digits")
    with pytest.raises(PixelforgeError, match=f"use --data {kind}:PATH"):
        Trainer(spec, tmp_path / "run", progress=False).fit()
    assert not (tmp_path / "run" / "run.json").exists()  # the same --out can start afresh


# ----------------------------------------------------------------------------- translate CLI


def _save_tiny(family: str, path: Path) -> Path:
    torch.manual_seed(0)
    if family == "pix2pix":
        model: nn.Module = Pix2Pix(
            Pix2PixConfig(image_size=16, channels=3, ngf=4, depth=3, d_layers=2)
        )
    else:
        model = CycleGAN(CycleGANConfig(image_size=16, channels=3, ngf=4, n_blocks=1, d_layers=2))
    return hub.save_model(model, path)


def test_translate_cli_writes_images_and_folders(tmp_path, cli):
    from pixelforge.io.images import read_image, read_provenance

    model = _save_tiny("cyclegan", tmp_path / "cg")
    g = np.random.default_rng(1)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(g.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(src / "a.jpg")
    Image.fromarray(g.integers(0, 256, (90, 70), dtype=np.uint8)).save(src / "sub" / "b.png")

    code, out, err = cli("translate", model, src / "a.jpg", "--out", tmp_path / "one.png")
    assert code == 0, err
    assert f"wrote {tmp_path / 'one.png'}" in out
    assert read_image(tmp_path / "one.png").shape == (30, 41, 3)
    meta = read_provenance(tmp_path / "one.png")
    assert meta["family"] == "cyclegan" and meta["direction"] == "AtoB"

    # a folder, BtoA, and tiles smaller than the grey image (whole-image instance norm)
    code, _, err = cli(
        "translate", model, src, "--out", tmp_path / "out", "--direction", "BtoA", "--tile", "32"
    )
    assert code == 0, err
    assert read_image(tmp_path / "out" / "a.png").shape == (30, 41, 3)
    assert read_image(tmp_path / "out" / "sub" / "b.png").shape == (90, 70, 3)
    assert read_provenance(tmp_path / "out" / "a.png")["direction"] == "BtoA"

    # a truncated file in the folder is named in the error; the other images are still written
    (src / "c.jpg").write_bytes((src / "a.jpg").read_bytes()[:300])
    code, _, err = cli("translate", model, src, "--out", tmp_path / "out2")
    assert code == 2 and "1 of 3" in err and "c.jpg" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "out2" / "a.png").exists() and (tmp_path / "out2" / "sub" / "b.png").exists()


def test_translate_cli_errors_are_one_line(tmp_path, cli):
    p2p = _save_tiny("pix2pix", tmp_path / "p2p")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(image)
    code, _, err = cli("translate", p2p, image, "--out", tmp_path / "y.png", "--direction", "BtoA")
    assert code == 2 and "A to B only" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("translate", p2p, tmp_path / "missing.png", "--out", tmp_path / "y.png")
    assert code == 2 and "missing.png does not exist" in err
    code, _, err = cli("translate", p2p, image, "--out", tmp_path / "y.jpg")
    assert code == 2 and ".png" in err
    # a cyclegan holding only one generator says which direction it can run
    model = CycleGAN(
        CycleGANConfig(image_size=16, channels=3, ngf=4, n_blocks=1, d_layers=2, generators="AtoB")
    )
    hub.save_model(model, tmp_path / "one")
    code, _, err = cli(
        "translate", tmp_path / "one", image, "--out", tmp_path / "z.png", "--direction", "BtoA"
    )
    assert code == 2 and "only the AtoB generator" in err


# ----------------------------------------------------------------------------- junyanz import
# Layouts read from junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py: ResnetGenerator is
# one nn.Sequential `model` (0 pad, 1 conv7, 2 norm, 3 relu, 4/7 stride-2 convs, 5/8 norms,
# 10.. ResnetBlocks whose conv_block is pad, conv, norm, relu, pad, conv, norm; then two
# ConvTranspose2d at 10+n and 13+n, and the final conv7 at 17+n). UnetGenerator nests
# UnetSkipConnectionBlocks: outermost [downconv, sub, relu, upconv, tanh], middle
# [lrelu, downconv, downnorm, sub, relu, upconv, upnorm(, dropout)], innermost
# [lrelu, downconv, relu, upconv, upnorm]; the middle ones return cat([x, model(x)]).


def _resnet_table(cin: int, cout: int, ngf: int, n: int) -> dict[str, tuple[int, ...]]:
    t: dict[str, tuple[int, ...]] = {
        "model.1.weight": (ngf, cin, 7, 7), "model.1.bias": (ngf,),
        "model.4.weight": (2 * ngf, ngf, 3, 3), "model.4.bias": (2 * ngf,),
        "model.7.weight": (4 * ngf, 2 * ngf, 3, 3), "model.7.bias": (4 * ngf,),
    }  # fmt: skip
    for k in range(n):
        for j in (1, 5):
            t[f"model.{10 + k}.conv_block.{j}.weight"] = (4 * ngf, 4 * ngf, 3, 3)
            t[f"model.{10 + k}.conv_block.{j}.bias"] = (4 * ngf,)
    t[f"model.{10 + n}.weight"] = (4 * ngf, 2 * ngf, 3, 3)  # ConvTranspose2d: in, out, k, k
    t[f"model.{10 + n}.bias"] = (2 * ngf,)
    t[f"model.{13 + n}.weight"] = (2 * ngf, ngf, 3, 3)
    t[f"model.{13 + n}.bias"] = (ngf,)
    t[f"model.{17 + n}.weight"] = (cout, ngf, 7, 7)
    t[f"model.{17 + n}.bias"] = (cout,)
    return t


def _ref_resnet(sd: dict[str, torch.Tensor], x: torch.Tensor, n: int) -> torch.Tensor:
    def conv(h, key, **kw):
        return F.conv2d(h, sd[key + ".weight"], sd[key + ".bias"], **kw)

    def up(h, key):
        w, b = sd[key + ".weight"], sd[key + ".bias"]
        return F.conv_transpose2d(h, w, b, stride=2, padding=1, output_padding=1)

    def pad(h, p):
        return F.pad(h, (p, p, p, p), mode="reflect")

    h = F.relu(F.instance_norm(conv(pad(x, 3), "model.1")))
    h = F.relu(F.instance_norm(conv(h, "model.4", stride=2, padding=1)))
    h = F.relu(F.instance_norm(conv(h, "model.7", stride=2, padding=1)))
    for k in range(n):
        p = f"model.{10 + k}.conv_block"
        r = F.relu(F.instance_norm(conv(pad(h, 1), p + ".1")))
        h = h + F.instance_norm(conv(pad(r, 1), p + ".5"))
    h = F.relu(F.instance_norm(up(h, f"model.{10 + n}")))
    h = F.relu(F.instance_norm(up(h, f"model.{13 + n}")))
    return torch.tanh(conv(pad(h, 3), f"model.{17 + n}"))


def _unet_prefix(level: int) -> str:
    return "model.model." + "".join("1.model." if i == 0 else "3.model." for i in range(level))


def _unet_table(cin: int, cout: int, ngf: int, depth: int) -> dict[str, tuple[int, ...]]:
    w = [ngf * min(2**i, 8) for i in range(depth)]
    t: dict[str, tuple[int, ...]] = {
        "model.model.0.weight": (w[0], cin, 4, 4),
        "model.model.3.weight": (2 * w[0], cout, 4, 4),
        "model.model.3.bias": (cout,),
    }

    def bn(key: str, c: int) -> None:
        for s in ("weight", "bias", "running_mean", "running_var"):
            t[f"{key}.{s}"] = (c,)
        t[f"{key}.num_batches_tracked"] = ()

    for i in range(1, depth):
        p = _unet_prefix(i)
        t[p + "1.weight"] = (w[i], w[i - 1], 4, 4)
        if i == depth - 1:
            t[p + "3.weight"] = (w[i], w[i - 1], 4, 4)
            bn(p + "4", w[i - 1])
        else:
            bn(p + "2", w[i])
            t[p + "5.weight"] = (2 * w[i], w[i - 1], 4, 4)
            bn(p + "6", w[i - 1])
    return t


def _ref_unet(
    sd: dict[str, torch.Tensor], x: torch.Tensor, depth: int, stats: str = "running"
) -> torch.Tensor:
    def bn(h, key):
        if stats == "image":  # their test.py without --eval: training mode, batch of 1
            return F.batch_norm(h, None, None, sd[key + ".weight"], sd[key + ".bias"], True)
        return F.batch_norm(
            h, sd[key + ".running_mean"], sd[key + ".running_var"], sd[key + ".weight"],
            sd[key + ".bias"], training=False,
        )  # fmt: skip

    def down(h, key):
        return F.conv2d(h, sd[key + ".weight"], sd.get(key + ".bias"), stride=2, padding=1)

    def up(h, key):
        return F.conv_transpose2d(
            h, sd[key + ".weight"], sd.get(key + ".bias"), stride=2, padding=1
        )

    def block(h: torch.Tensor, level: int) -> torch.Tensor:
        p = _unet_prefix(level)
        if level == depth - 1:
            inner = bn(up(F.relu(down(F.leaky_relu(h, 0.2), p + "1")), p + "3"), p + "4")
        else:
            d = bn(down(F.leaky_relu(h, 0.2), p + "1"), p + "2")
            inner = bn(up(F.relu(block(d, level + 1)), p + "5"), p + "6")
        return torch.cat([h, inner], dim=1)

    d0 = down(x, "model.model.0")
    return torch.tanh(up(F.relu(block(d0, 1)), "model.model.3"))


def _random_state(table: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in table.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * (0.1 if k.endswith(".weight") else 0.05)
    return sd


def test_junyanz_resnet_pair_imports_as_cyclegan(tmp_path, cli):
    n, ngf = 6, 4
    sd_a = _random_state(_resnet_table(3, 3, ngf, n), 0)
    sd_b = _random_state(_resnet_table(3, 3, ngf, n), 1)
    sd_a["model.2.running_mean"] = torch.zeros(ngf)  # old instance-norm checkpoints had these
    torch.save(sd_a, tmp_path / "latest_net_G_A.pth")
    torch.save(sd_b, tmp_path / "latest_net_G_B.pth")

    code, _, err = cli(
        "import", "junyanz", tmp_path / "latest_net_G_A.pth", "--out", tmp_path / "m"
    )
    assert code == 2 and "--allow-pickle" in err  # pickles only on request
    code, _, err = cli(
        "import", "junyanz", "--g-ab", tmp_path / "latest_net_G_A.pth", "--g-ba",
        tmp_path / "latest_net_G_B.pth", "--netG", "resnet_6blocks", "--out", tmp_path / "m",
        "--allow-pickle",
    )  # fmt: skip
    assert code == 0, err
    model = hub.load(tmp_path / "m")
    assert model.family == "cyclegan" and model.config.n_blocks == n
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model.translate(x), _ref_resnet(sd_a, x, n), atol=1e-5)
        model.direction = "BtoA"
        assert torch.allclose(model.translate(x), _ref_resnet(sd_b, x, n), atol=1e-5)

    # their G_B file alone is the B -> A generator, without being told
    code, _, err = cli(
        "import", "junyanz", tmp_path / "latest_net_G_B.pth", "--out", tmp_path / "b",
        "--allow-pickle",
    )  # fmt: skip
    assert code == 0, err
    model = hub.load(tmp_path / "b")
    assert model.config.generators == "BtoA"
    with torch.no_grad():
        assert torch.allclose(model.translate(x), _ref_resnet(sd_b, x, n), atol=1e-5)


def test_junyanz_single_generator_and_wrong_options(tmp_path):
    from pixelforge.tasks.junyanz import import_junyanz

    sd = _random_state(_resnet_table(3, 3, 4, 9), 2)
    torch.save(sd, tmp_path / "horse2zebra.pth")
    model = import_junyanz(tmp_path / "horse2zebra.pth", allow_pickle=True, direction="BtoA")
    assert isinstance(model, CycleGAN) and model.config.generators == "BtoA"
    assert model.direction == "BtoA"
    with pytest.raises(PixelforgeError, match="only the BtoA generator"):
        model.direction = "AtoB"
    with pytest.raises(ConfigError, match="resnet_9blocks"):
        import_junyanz(tmp_path / "horse2zebra.pth", allow_pickle=True, netg="resnet_6blocks")
    with pytest.raises(ConfigError, match="--norm instance"):
        import_junyanz(tmp_path / "horse2zebra.pth", allow_pickle=True, norm="batch")
    torch.save({"model.0.weight": torch.zeros(3)}, tmp_path / "net_D.pth")
    with pytest.raises(ModelLoadError, match="not a discriminator"):
        import_junyanz(tmp_path / "net_D.pth", allow_pickle=True)
    del sd["model.12.conv_block.5.bias"]
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(ModelLoadError, match=r"missing: blocks\.2\.conv2\.bias"):
        import_junyanz(tmp_path / "broken.pth", allow_pickle=True)


def test_junyanz_unet_imports_as_pix2pix(tmp_path, cli):
    depth, ngf = 7, 2  # unet_128, batch norm
    sd = _random_state(_unet_table(3, 3, ngf, depth), 3)
    torch.save(sd, tmp_path / "latest_net_G.pth")
    code, _, err = cli(
        "import", "junyanz", tmp_path / "latest_net_G.pth", "--netG", "unet_128", "--norm",
        "batch", "--out", tmp_path / "p2p", "--allow-pickle",
    )  # fmt: skip
    assert code == 0, err
    model = hub.load(tmp_path / "p2p")
    assert model.family == "pix2pix" and model.size_multiple == 128
    x = torch.rand(1, 3, 128, 256) * 2 - 1
    with torch.no_grad():  # each image's own batch statistics, as their test.py
        assert torch.allclose(model.translate(x), _ref_unet(sd, x, depth, "image"), atol=1e-5)
    out_image = apply_model(model, torch.rand(3, 50, 70))  # padded to 128 inside
    assert out_image.shape == (3, 50, 70)
    code, _, err = cli(
        "import", "junyanz", tmp_path / "latest_net_G.pth", "--bn-stats", "running", "--out",
        tmp_path / "p2p-eval", "--allow-pickle",
    )  # fmt: skip
    assert code == 0, err
    with torch.no_grad():  # the running averages, as their test.py --eval
        got = hub.load(tmp_path / "p2p-eval").translate(x)
        assert torch.allclose(got, _ref_unet(sd, x, depth), atol=1e-5)


# ----------------------------------------------------------------------------- instance norm


def _texture() -> torch.Tensor:
    """A 200 x 300 crop of scikit-image's astronaut, 1 x 3 x H x W in [-1, 1]."""
    from skimage import data as skdata

    pixels = skdata.astronaut()[100:300, 150:450]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def _exact_stats_tiled(model: CycleGAN, x: torch.Tensor, **tiling) -> torch.Tensor:
    """The best any tiling can do: tiles normalised with statistics from one whole-image pass."""
    norms = [m for m in model.modules() if isinstance(m, nn.InstanceNorm2d)]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module, inputs, output):
        h = inputs[0].double()
        stats[module] = (h.mean((2, 3)), h.var((2, 3), unbiased=False))

    def frozen(module, inputs, output):
        mean, var = stats[module]
        h = inputs[0].double()
        return ((h - mean[..., None, None]) / torch.sqrt(var[..., None, None] + module.eps)).float()

    hooks = [m.register_forward_hook(record) for m in norms]
    model.translate(x)
    for h in hooks:
        h.remove()
    hooks = [m.register_forward_hook(frozen) for m in norms]
    try:
        return run_tiled(lambda t, _: model.translate(t), x, multiple=4, **tiling)
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def test_whole_image_instance_norm_under_tiling_matches_one_pass():
    torch.manual_seed(0)
    x = _texture()
    tiling = {"tile": 64, "overlap": 16}

    def fn(t: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        return model.translate(t)

    # A generator with no residual blocks: its receptive field (radius 15 px) fits inside a
    # tile, so away from the tile seams a tiled pass can equal the one-pass output exactly.
    model = CycleGAN(CycleGANConfig(channels=3, ngf=8, n_blocks=0)).eval()
    whole = model.translate(x)
    plain = run_tiled(fn, x, multiple=4, **tiling)
    with frozen_instance_norm(model, lambda: run_tiled(fn, x, multiple=4, **tiling)):
        tiled = run_tiled(fn, x, multiple=4, **tiling)
    inner = _single_tile_interior(x.shape[-2:], margin=20, **tiling)
    assert inner.float().mean() > 0.3
    assert float((tiled - whole).abs()[..., inner].max()) < 1e-5
    assert float((plain - whole).abs()[..., inner].mean()) > 0.05  # the test can fail
    assert float((tiled - whole).abs().mean()) < 0.1 * float((plain - whole).abs().mean())

    # The CycleGAN layout (9 residual blocks, narrow): deep layers see past the tile edges, in
    # the gathering passes and in the final one alike. The gathered statistics still give what
    # exact whole-image statistics give, and far less error than per-tile statistics.
    model = CycleGAN(CycleGANConfig(channels=3, ngf=4, n_blocks=9)).eval()
    whole = model.translate(x)
    plain = run_tiled(fn, x, multiple=4, **tiling)
    with frozen_instance_norm(model, lambda: run_tiled(fn, x, multiple=4, **tiling)):
        tiled = run_tiled(fn, x, multiple=4, **tiling)
    best = _exact_stats_tiled(model, x, **tiling)
    assert float((tiled - best).abs().mean()) < 0.02
    assert float((tiled - whole).abs().mean()) < 0.5 * float((plain - whole).abs().mean())
    # outside the block the model is unchanged
    assert torch.equal(model.translate(x), whole)


def _single_tile_interior(size, *, tile: int, overlap: int, margin: int) -> torch.Tensor:
    """Pixels covered by one tile only and at least ``margin`` pixels from its inner edges."""
    masks = []
    for n in size:
        starts = tile_starts(n, tile, overlap, 4)
        cover = torch.zeros(n)
        inner = torch.zeros(n, dtype=torch.bool)
        for i, s in enumerate(starts):
            cover[s : s + tile] += 1
            lo = s if i == 0 else s + margin
            hi = s + tile if i == len(starts) - 1 else s + tile - margin
            inner[lo:hi] = True
        masks.append(inner & (cover == 1))
    return masks[0][:, None] & masks[1][None, :]


@torch.no_grad()
def test_frozen_instance_norm_with_one_tile_changes_nothing():
    torch.manual_seed(1)
    model = CycleGAN(CycleGANConfig(channels=3, ngf=4, n_blocks=2)).eval()
    x = torch.rand(2, 3, 24, 32) * 2 - 1
    whole = model.translate(x)
    with frozen_instance_norm(model, lambda: run_tiled(lambda t, _: model.translate(t), x)):
        again = model.translate(x)
    assert torch.allclose(again, whole, atol=1e-5)
