"""Nearest training images of a query image, by distance in the model's lab space.

* Models with an encoder (VAE): the encoder's posterior means of the query and of the data.
* GANs (dcgan, stylegan via the lab hooks): GAN inversion of the query and of up to
  ``max_images`` data images with few steps: slower, and **approximate** (an inversion that did
  not converge puts an image in the wrong place). The output says which was used.
* ``space="pixel"``: plain Euclidean distance between the images at the model's resolution, for
  any model (including diffusion models, which are not inverted). The domain feature extractors
  of :mod:`pixelforge.features.domain` are deliberately not used: they are documented as
  features for domain FID/KID only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pixelforge.data import DataConfig, open_dataset
from pixelforge.errors import ConfigError
from pixelforge.latent.direction import lab_latents_of
from pixelforge.latent.invert import check_invertible, load_image, model_geometry
from pixelforge.latent.space import check_generator

SPACES = ("latent", "pixel")


@dataclass
class Neighbors:
    """The ``k`` nearest data images of a query."""

    query: torch.Tensor  # 1 x C x H x W in [0, 1]
    images: torch.Tensor  # k x C x H x W in [0, 1]
    indices: list[int]  # indices into the dataset
    distances: list[float]
    labels: list[int] | None
    space: str  # what the distances are measured in
    searched: int  # how many data images were compared

    def grid_images(self) -> torch.Tensor:
        """The query first, then its neighbours, nearest first."""
        return torch.cat([self.query, self.images])


def nearest_neighbors(
    model: torch.nn.Module,
    image: str | Path | torch.Tensor,
    data: str,
    *,
    k: int = 8,
    space: str = "latent",
    class_label: int | None = None,
    max_images: int = 512,
    steps: int = 100,
    seed: int = 0,
) -> Neighbors:
    """The ``k`` images of ``data`` nearest to ``image`` (a path, or 1 x C x H x W in [-1, 1])."""
    gen = check_generator(model)
    space = {"pixels": "pixel"}.get(space, space)  # as `eval memorization --space pixels` says it
    if space not in SPACES:
        raise ConfigError(f"--space must be latent or pixel, got '{space}'.")
    if k < 1 or max_images < 1:
        raise ConfigError("-k and --max-images must be at least 1.")
    if space == "latent":
        check_invertible(gen)
    size, channels = model_geometry(gen)
    query = image if isinstance(image, torch.Tensor) else load_image(image, gen)
    ds = open_dataset(data, image_size=size, channels=channels, config=DataConfig())
    n = min(len(ds), max_images)
    if n < len(ds):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    else:
        idx = torch.arange(n)
    batch = ds.get_batch(idx)
    x = batch["image"]
    data_labels = batch.get("label")
    if space == "pixel":
        q, d = query.flatten(1), x.flatten(1)
        what = "pixels at the model's resolution"
    else:
        if gen.num_classes and (data_labels is None or class_label is None):
            raise ConfigError(
                "this model is class-conditional: pass --class for the query and use a labelled "
                "dataset whose labels are the model's classes, or use --space pixel."
            )
        if gen.num_classes and int(data_labels.max()) >= gen.num_classes:  # type: ignore[union-attr]
            raise ConfigError(f"{data}'s labels are not this model's classes; use --space pixel.")
        ql = None if class_label is None else torch.tensor([class_label])
        if ql is not None:
            gen.default_labels(1, class_label)  # range check
        q_lat, what = lab_latents_of(gen, query, ql, steps=steps, seed=seed)
        d_lat, _ = lab_latents_of(gen, x, data_labels, steps=steps, seed=seed)
        q, d = q_lat.flatten(1), d_lat.flatten(1)
        what = f"latent space ({what})"
    dist = torch.cdist(q.double(), d.double())[0]
    k = min(k, n)
    order = dist.argsort()[:k]
    return Neighbors(
        query=((query + 1) / 2).clamp(0, 1),
        images=((x[order] + 1) / 2).clamp(0, 1),
        indices=idx[order].tolist(),
        distances=dist[order].tolist(),
        labels=None if data_labels is None else data_labels[order].tolist(),
        space=what,
        searched=n,
    )
