"""What every image generator offers: seeded sampling in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from pixelforge.errors import ConfigError


class ImageGenerator(nn.Module):
    """Base of models that turn latents (and optional class labels) into images.

    Subclasses set ``family``, ``config`` (with ``image_size``, ``channels``, ``num_classes``) and
    implement :meth:`latent_shape` and :meth:`generate`.
    """

    family: str = ""
    config: object

    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent sample."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1] from latents ``z``."""
        raise NotImplementedError

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
