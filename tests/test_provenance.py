"""What the image-in, image-out commands record in their PNGs, as `pixelforge info` shows it."""

from __future__ import annotations

import json

import torch

from pixelforge import __version__
from pixelforge.hub import read_model_meta, shipped_models
from pixelforge.io.images import write_png


def _weights_sha(name: str) -> str:
    sha: str = read_model_meta(shipped_models()[name])["weights"]["sha256"]
    return sha


def test_image_commands_record_version_command_line_model_options_and_input(tmp_path, cli):
    torch.manual_seed(0)
    src = tmp_path / "photo.png"
    write_png(src, torch.rand(3, 24, 24))
    hole = torch.zeros(1, 24, 24)
    hole[:, 8:14, 8:14] = 1
    write_png(tmp_path / "hole.png", hole)
    runs = {  # typed arguments after the command, the model, the options it must record
        "denoise": (["--tile", "16", "--ensemble", "2"], "denoise", {"tile": 16, "ensemble": 2}),
        "upscale": (["--scale", "2"], "sr-x2", {"scale": 2}),
        "inpaint": (["--mask", tmp_path / "hole.png"], "inpaint", {"mask": "hole.png"}),
        "remove-bg": ([], "matting", {}),
        "dip": (["--task", "denoise", "--iterations", "2", "--seed", "5"], None, {"seed": 5}),
    }
    for command, (args, model, options) in runs.items():
        out = tmp_path / "out" / f"{command}.png"
        typed = [command, src, *args, "--out", out, "--threads", "1"]
        code, _, err = cli(*typed)
        assert code == 0, err
        code, shown, err = cli("info", out, "--json")
        assert code == 0, err
        doc = json.loads(shown)
        assert doc["pixelforge_version"] == __version__
        # the command line as typed, less --out: the same image is the same bytes anywhere
        line = " ".join(str(a) for a in typed if a not in ("--out", out))
        assert doc["command"] == f"pixelforge {line}", command
        assert doc["source"] == "photo.png"
        assert {k: doc.get(k) for k in options} == options, command
        if model is not None:
            assert doc["model"] == model and doc["model_sha256"] == _weights_sha(model)
            assert doc["family"] == read_model_meta(shipped_models()[model])["family"]
