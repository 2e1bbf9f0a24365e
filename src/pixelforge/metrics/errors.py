"""The error every metric raises for input a user can fix."""

from __future__ import annotations

from pixelforge.errors import PixelforgeError


class MetricError(PixelforgeError, ValueError):
    """Metric input is unusable: non-finite features, too few samples, mismatched shapes or sizes.

    The message names what was wrong (the argument, its shape or count) and what to do. It is also
    a :class:`ValueError`, so code that already catches bad values keeps working.
    """
