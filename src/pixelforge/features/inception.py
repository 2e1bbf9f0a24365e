"""The FID Inception v3: TensorFlow's 2015-12-05 Inception graph, as pytorch-fid ports it.

Heusel et al. (2017) compute FID on the pool3 features of the TF Inception graph
``inception-2015-12-05``. pytorch-fid (``fid_inception_v3``) and torch-fidelity
(``FeatureExtractorInceptionV3``) port it onto torchvision's Inception v3 layout with changes that
reproduce the graph: a 1008-class ``fc``; in the ``Mixed_5*`` (A), ``Mixed_6b-e`` (C) and
``Mixed_7b`` (E_1) blocks the 3x3 average pool of the pool branch leaves padding out of the
average (``count_include_pad=False``, as TF does), and ``Mixed_7c`` (E_2) max-pools there instead
of average-pooling. Every BatchNorm uses eps 0.001. The module attributes below carry the same
names as pytorch-fid's network, so the state dict of ``pt_inception-2015-12-05-6726825d.pth``
loads directly (no torchvision needed).

Input: float images N x 3 x 299 x 299 in [0, 1], scaled to [-1, 1] by ``2 x - 1`` as pytorch-fid
does. (torch-fidelity takes uint8 ``u`` and scales by ``(u - 128) / 128``, which equals
``2 x - 1`` at ``x = u / 256``: a uint8 image read as ``u / 255`` gives slightly different
features in the two tools; pixelforge follows pytorch-fid.)

Outputs: :meth:`InceptionV3FID.forward` gives the 2048-d pool3 features (FID, KID, precision and
recall); :meth:`InceptionV3FID.logits` gives the 1008 logits *without* the fc bias, which is what
torch-fidelity's Inception Score uses (``logits_unbiased``); :meth:`InceptionV3FID.features_and_logits`
gives both from one pass.

By default the network keeps its weights and activations channels-last (NHWC), about 1.7x faster
on an x86 CPU than NCHW; the features differ from the NCHW computation by float rounding only
(below 1e-6 relative in the reference test; ``InceptionV3FID(channels_last=False)`` gives the
NCHW computation, which matched pytorch-fid and torch-fidelity bit for bit there). bf16 autocast doubles the
speed again on CPUs with AVX512-BF16 but moves the features by about 0.5% of their scale, too
much for FIDs comparable to published ones; it is left to the caller (``torch.autocast``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.features.base import FeatureExtractor
from pixelforge.features.registry import register_extractor
from pixelforge.features.weights import load_exact, load_weights, seeded_init


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], **kwargs: object):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # TF's 3x3 "SAME" average pool averages only the pixels inside the image.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d (35 x 35)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a: 35 x 35 -> 17 x 17."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e (17 x 17), factorised 7x7 convolutions."""

    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a: 17 x 17 -> 8 x 8."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """Mixed_7b (``pool="avg"``, TF's E_1) and Mixed_7c (``pool="max"``, TF's E_2), 8 x 8."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_tf(x)
        else:  # the TF graph max-pools in its last block (kept by pytorch-fid as FIDInceptionE_2)
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class InceptionV3FID(FeatureExtractor):
    """FID Inception v3: [0, 1] images 299 x 299 -> 2048-d pool3 features (and 1008 logits)."""

    name = "inception-v3-fid"
    input_size = 299
    input_channels = 3
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = channels_last  # NHWC activations: ~1.7x faster on x86 CPUs
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, self.num_classes)
        if channels_last:  # what Module.to(memory_format=...) does to 4-d parameters
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionV3FID:
        """Always stays in eval mode: BatchNorm must use the stored statistics."""
        return super().train(False)

    def _check(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (299, 299):
            raise ValueError(
                f"{self.name} takes N x 3 x 299 x 299 images in [0, 1], got {tuple(images.shape)}; "
                "resize with pixelforge.features.preprocess.prepare(images, extractor)."
            )

    def pool3(self, images: torch.Tensor) -> torch.Tensor:
        """The 2048-d pool3 features, in the dtype the network runs in."""
        self._check(images)
        x = 2 * images - 1  # [0, 1] -> [-1, 1], as pytorch-fid
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """pool3 features N x 2048, float32."""
        return self.pool3(images).float()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The 1008 class logits without the fc bias (torch-fidelity's ``logits_unbiased``)."""
        return self.features_and_logits(images)[1]

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pool3 N x 2048, unbiased logits N x 1008), float32, from one pass."""
        feats = self.pool3(images)
        logits = feats @ self.fc.weight.to(feats.dtype).T
        return feats.float(), logits.float()


def inception_v3_fid(
    weights: str | Path | None = None,
    *,
    random_seed: int | None = None,
    channels_last: bool = True,
) -> InceptionV3FID:
    """The FID Inception with the published weights (``weights``: a path, else searched for).

    ``channels_last`` (default) runs the convolutions on NHWC tensors, about 1.7x faster on an
    x86 CPU (docs/benchmarks.md); features then differ from the NCHW computation by float
    rounding only (below 1e-6 relative in the reference test).

    ``random_seed`` builds it with seeded random weights instead (tests, benchmarks): such an
    extractor reports ``weights_sha256 = "random:<seed>"`` and is not comparable to published FIDs.
    Missing weights raise :class:`pixelforge.features.weights.WeightsNotFoundError`, which says
    how to get them.
    """
    net = InceptionV3FID(channels_last=channels_last)
    if random_seed is not None:
        seeded_init(net, random_seed)
        net.weights_sha256 = f"random:{random_seed}"
        net.comparable_to_published = False
        return net
    loaded = load_weights("inception", weights)
    load_exact(net, loaded.tensors, str(loaded.path))
    net.weights_sha256 = loaded.sha256
    net.comparable_to_published = loaded.verified
    return net


register_extractor(
    "inception-v3-fid",
    inception_v3_fid,
    "FID Inception v3 (pytorch-fid / torch-fidelity weights): 299x299 -> 2048-d pool3, 1008 logits",
)
