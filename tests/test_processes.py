"""Commands under torchrun: work split across the processes, one report, one error line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.hub import save_model
from pixelforge.io.images import write_png
from pixelforge.models.matting import MattingConfig, MattingNet

SCRIPTS = Path(__file__).parent / "scripts"
TORCHRUN = [
    shutil.which("torchrun", path=str(Path(sys.executable).parent)),
    "--standalone",
    "--nproc_per_node=2",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=ENV, timeout=300)


def json_docs(text: str) -> list[object]:
    """The JSON documents printed one after the other in ``text``."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)
    return docs


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Five result/reference pairs, and five images with their mattes (A/ and B/)."""
    a, b, held_out = tmp_path / "a", tmp_path / "b", tmp_path / "held-out"
    rng = np.random.default_rng(0)
    for i in range(5):
        img = rng.random((3, 24, 20))
        write_png(a / f"{i}.png", torch.from_numpy(img))
        write_png(
            b / f"{i}.png", torch.from_numpy(np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1))
        )
        (held_out / "A").mkdir(parents=True, exist_ok=True)
        (held_out / "B").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((24, 20, 3)) * 255).astype(np.uint8)).save(
            held_out / "A" / f"{i}.png"
        )
        Image.fromarray((rng.random((24, 20)) * 255).astype(np.uint8)).save(
            held_out / "B" / f"{i}.png"
        )
    return a, b, held_out


def test_a_mistake_under_a_launcher_is_said_by_one_process(cli, tmp_path, monkeypatch):
    args = ("train", "restore", "--data", f"folder:{tmp_path / 'missing'}", "--out", tmp_path)
    code, _, err = cli(*args)
    assert code == 2 and error_lines(err) == [err.strip()] and "no such folder" in err
    monkeypatch.setenv("RANK", "1")  # torchrun's second process: the same mistake, said once
    code, out, err = cli(*args)
    assert (code, out, err) == (2, "", "")
    code, out, err = cli("train", "restore", "--no-such-option")
    assert (code, out, err) == (2, "", "")


@pytest.mark.slow
def test_paired_metrics_split_the_pairs_across_processes(cli, pairs, tmp_path):
    a, b, held_out = pairs
    torch.manual_seed(0)
    save_model(
        MattingNet(MattingConfig(image_size=16, widths=(4, 8), infer_size=0)), tmp_path / "m"
    )
    commands = [
        ["eval", "psnr", str(a), str(b), "--json"],
        ["eval", "ssim", str(a), str(b), "--json", "--y-channel"],
        ["eval", "matting", str(tmp_path / "m"), str(held_out), "--json", "--device", "cpu"],
    ]
    one = []
    for command in commands:
        code, out, err = cli(*command)
        assert code == 0, err
        one.append(json.loads(out))
    log = tmp_path / "reads"
    proc = torchrun(
        str(SCRIPTS / "cli_distributed.py"), str(log), *(json.dumps(c) for c in commands)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json_docs(proc.stdout) == one  # rank 0 reports the numbers of one process, once
    reads = [json.loads(Path(f"{log}.rank{r}.json").read_text())["reads"] for r in (0, 1)]
    files = sorted(str(p) for d in (a, b, held_out / "A", held_out / "B") for p in d.iterdir())
    # each image is read by one process only (psnr and ssim read the same folders)
    assert sorted(reads[0] + reads[1]) == sorted(files[:10] * 2 + files[10:])
    assert not set(reads[0]) & set(reads[1])


@pytest.mark.slow
def test_an_error_in_the_share_of_one_process_is_one_line(pairs, tmp_path):
    a, b, _ = pairs
    bad_size, bad_file = tmp_path / "bad-size", tmp_path / "bad-file"
    shutil.copytree(b, bad_size)
    shutil.copytree(b, bad_file)
    # in the last pair, the second process's share
    write_png(bad_size / "4.png", torch.rand(3, 20, 20))
    (bad_file / "4.png").write_bytes(b"not an image")
    commands = [
        ["eval", "psnr", str(a), str(bad_size)],
        ["eval", "fid", str(a), str(bad_file), "--extractor", "shapes-cnn"],
    ]
    proc = torchrun(
        str(SCRIPTS / "cli_distributed.py"), str(tmp_path / "log"), *map(json.dumps, commands)
    )
    lines = error_lines(proc.stderr)
    assert len(lines) == 2, proc.stderr[-3000:]  # one for each command
    assert "4.png: (24, 20) vs (20, 20) pixels" in lines[0] and "4.png" in lines[1]
    assert "[rank" not in proc.stderr  # no traceback of a process left waiting for the other
    codes = [json.loads((tmp_path / f"log.rank{r}.json").read_text())["codes"] for r in (0, 1)]
    assert codes == [[2, 2], [2, 2]]


@pytest.mark.slow
def test_inpainting_with_an_example_pool_trains_in_two_processes_as_in_one(tmp_path):
    from pixelforge.hub import read_safetensors
    from pixelforge.training.run import write_run

    from conftest import make_image_folder, tiny_spec

    data = make_image_folder(tmp_path / "photos")
    settings = {
        "model": {"task": "inpaint", "scale": 1, "fill": "harmonic"},
        "train": {
            "batch_size": 4,
            "steps": 3,
            "checkpoint_every": 3,
            "log_every": 1,
            "example_pool": 10,
        },
    }
    runs = {n: tmp_path / n for n in ("one", "two")}
    spec = tiny_spec("restore", runs["one"], dataset=data, **settings)
    script = str(SCRIPTS / "restore_pool_distributed.py")
    for n, launch in (("one", [sys.executable]), ("two", TORCHRUN)):
        write_run(runs[n], spec)
        proc = subprocess.run(
            [*launch, script, str(runs[n])], capture_output=True, text=True, env=ENV, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    ref = read_safetensors(runs["one"] / "rank0.safetensors")
    r0, r1 = (read_safetensors(runs["two"] / f"rank{r}.safetensors") for r in (0, 1))
    # the pool is prepared once, in shares: chunks of 4 examples, one for rank 0 and two for 1
    assert [int(r["prepared"]) for r in (ref, r0, r1)] == [10, 4, 6]
    for key in ref:
        if key == "prepared":
            continue
        assert torch.equal(r0[key], r1[key]), f"the processes disagree on {key}"
        if key.startswith("pool."):
            assert torch.equal(ref[key], r0[key]), key
        else:  # the loss over the holes is normalised by their global area, as in one process
            assert torch.allclose(ref[key], r0[key], atol=1e-5, rtol=0), key
    logged = [
        [json.loads(line) for line in (runs[n] / "metrics.jsonl").read_text().splitlines()]
        for n in ("one", "two")
    ]
    assert [row["step"] for row in logged[1]] == [row["step"] for row in logged[0]]
    for row_one, row_two in zip(*logged, strict=True):  # the global batch's loss, not rank 0's
        assert row_two["l1"] == pytest.approx(row_one["l1"], rel=1e-5)


def test_a_global_batch_that_does_not_split_says_which_batch_does(cli, tmp_path, monkeypatch):
    import accelerate

    from conftest import make_image_folder

    class TwoProcesses:  # what accelerate sees in the first process of torchrun --nproc_per_node=2
        def __init__(self, cpu: bool = False) -> None:
            self.num_processes, self.process_index, self.is_main_process = 2, 0, True
            self.device = torch.device("cpu")

    monkeypatch.setattr(accelerate, "PartialState", TwoProcesses)
    data = make_image_folder(tmp_path / "pairs", "paired")
    code, _, err = cli("train", "pix2pix", "--data", data, "--out", tmp_path / "run")
    assert code == 2 and error_lines(err) == [err.strip()], err
    assert "--set train.batch_size=2" in err  # pix2pix's batch of 1 image does not split in two
    assert not (tmp_path / "run").exists()


def test_the_command_line_leaves_the_process_group_before_it_exits(tmp_path, monkeypatch):
    """A process still in a gloo group at exit may abort as the interpreter shuts down (exit
    code -6: torchrun then reports a failed run although the work was done)."""
    import torch.distributed as dist

    import pixelforge.cli.main as cli_main

    def command(argv: list[str] | None = None) -> int:  # joins as eval under torchrun does
        store = f"file://{tmp_path / 'store'}"
        dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
        return 0

    monkeypatch.setattr(cli_main, "main", command)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli_main.entry()
        assert exit_.value.code == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
