"""The built-in extractors, registered explicitly (each module calls register_extractor)."""

from pixelforge.features import (
    domain,  # noqa: F401  (digits-cnn, shapes-cnn)
    inception,  # noqa: F401  (inception-v3-fid)
    vgg,  # noqa: F401  (vgg16, vgg19)
)
