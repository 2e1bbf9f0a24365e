"""`pixelforge import fast-style`: a pytorch/examples fast_neural_style checkpoint
(``saved_models/*.pth``, a pickled ``TransformerNet`` state dict) as a fast-style model dir.

The pickle is read only with ``--allow-pickle``, with ``torch.load(weights_only=True)``; the
conversion itself is :func:`pixelforge.models.fast_style.from_pytorch_examples`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pixelforge.cli.options import AllowPickle, Force


def import_fast_style(
    file: Annotated[
        Path,
        typer.Argument(
            help="A pytorch/examples fast_neural_style model, e.g. saved_models/candy.pth "
            "(or a safetensors file with the same keys)."
        ),
    ],
    out_dir: Annotated[Path | None, typer.Option("--out", help="The model dir to write.")] = None,
    allow_pickle: AllowPickle = False,
    force: Force = False,
) -> None:
    """Convert a pytorch/examples fast_neural_style TransformerNet into a fast-style model dir."""
    from pixelforge import hub
    from pixelforge.errors import ConfigError
    from pixelforge.models.fast_style import from_pytorch_examples
    from pixelforge.tasks.diffusers_io import atomic_folder, check_target
    from pixelforge.tasks.junyanz import read_state

    if out_dir is None:
        raise ConfigError("give --out, the model dir to write.")
    check_target(out_dir, force=force)  # before reading anything
    state = read_state(file, allow_pickle=allow_pickle)
    model = from_pytorch_examples(state, source=str(file))
    card = {
        "summary": "fast_neural_style TransformerNet imported from pytorch/examples",
        "source": file.name,
        "source_sha256": hub.sha256_file(file),
        "value_range": "the network maps RGB 0..255 to RGB 0..255; translate() converts [-1, 1]",
    }
    with atomic_folder(out_dir, force=force) as tmp:
        hub.save_model(model, tmp, card=card)
    c = model.config
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out_dir} (fast-style, width {c.width}, {c.n_blocks} residual blocks, "
        f"from {file.name})"
    )
