"""What every image generator offers: seeded sampling in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError


def check_image_fields(image_size: int, channels: int | None, num_classes: int | None) -> None:
    """The checks every image generator's config shares: a power-of-two ``image_size`` from 8 to
    256, 1 or 3 ``channels`` (None: from the dataset) and ``num_classes`` >= 0 (None: likewise)."""
    s = image_size
    if s < 8 or s > 256 or s & (s - 1):
        raise ConfigError(f"model.image_size must be a power of two from 8 to 256, got {s}.")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"model.channels must be 1 or 3, got {channels}.")
    if num_classes is not None:
        check_range("model.num_classes", num_classes, low=0)


class ImageGenerator(nn.Module):
    """Base of models that turn latents (and optional class labels) into images.

    Subclasses set ``family``, ``config`` (with ``image_size``, ``channels``, ``num_classes``) and
    implement :meth:`latent_shape` and :meth:`generate`.
    """

    family: str = ""
    config: object
    # The latent lab's space: "gaussian" (z ~ N(0, I): interpolate with slerp) or "w" (a mapped
    # space such as StyleGAN's W: interpolate with lerp). See to_lab / from_lab.
    lab_space: str = "gaussian"

    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent sample."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1] from latents ``z``."""
        raise NotImplementedError

    def to_lab(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Latents ``z`` -> the lab's latents (StyleGAN: the mapped W; others: ``z`` itself)."""
        return z

    def from_lab(self, w: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1] from the lab's latents (the inverse direction of :meth:`to_lab`)."""
        return self.generate(w, labels)

    def mean_lab_latent(self, labels: torch.Tensor | None = None, n: int = 4096) -> torch.Tensor:
        """A start point for inversion: mean of W for a mapped space, zeros for a Gaussian one."""
        if self.lab_space == "gaussian":
            return torch.zeros(self.latent_shape())
        g = torch.Generator().manual_seed(0)
        z = torch.randn((n, *self.latent_shape()), generator=g)
        device = next(self.parameters()).device
        lb = None if labels is None else labels[:1].expand(n).to(device)
        with torch.no_grad():
            return self.to_lab(z.to(device), lb).mean(0).cpu()

    @property
    def num_classes(self) -> int:
        return int(getattr(self.config, "num_classes", 0) or 0)

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """``n`` latents drawn on the CPU from a generator seeded by ``seed`` (device-independent)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn((n, *self.latent_shape()), generator=g)

    def default_labels(self, n: int, class_label: int | None = None) -> torch.Tensor | None:
        """Labels for ``n`` samples: ``class_label`` for all, or cycling 0..K-1; None if unconditional."""
        k = self.num_classes
        if k == 0:
            if class_label is not None:
                raise ConfigError("this model is unconditional: it takes no --class.")
            return None
        if class_label is not None:
            if not 0 <= class_label < k:
                raise ConfigError(
                    f"--class must be between 0 and {k - 1} for this model, got {class_label}."
                )
            return torch.full((n,), int(class_label), dtype=torch.long)
        return torch.arange(n, dtype=torch.long) % k

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        class_label: int | None = None,
        labels: torch.Tensor | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """``n`` images as a float tensor N x C x H x W in [0, 1] on the CPU.

        Same model, seed and options: same images, whatever ``batch_size`` or device.
        """
        if n < 1:
            raise ConfigError(f"--n must be at least 1, got {n}.")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        z = self.sample_latents(n, seed)
        if labels is None:
            labels = self.default_labels(n, class_label)
        out = []
        for i in range(0, n, batch_size):
            zb = z[i : i + batch_size].to(device)
            lb = None if labels is None else labels[i : i + batch_size].to(device)
            out.append(self.generate(zb, lb).float().cpu())
        self.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1)
