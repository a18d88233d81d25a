"""The cyclic garbage collector paused while a large, acyclic structure is built (a load, a read_all).

Building 10,000 deployments makes hundreds of thousands of small containers and no cycles. With the
collector on, Python walks the growing heap again and again during the build; with it merely off,
it walks everything built at once when it is switched back on (the young generation then holds it
all), again when those objects reach the middle generation, and again at the next full collection.

:func:`collector_paused` avoids both: on the way out it moves what the block built straight to the
oldest generation (``gc.freeze`` then ``gc.unfreeze``: two list splices, no walk). Nothing becomes
uncollectable: those objects are still examined by the next full collection, as every long-lived
object is, so a cycle among them is still found; they only skip the young collections, which
they would survive anyway. Safe in a long-running ``serve`` as in a one-shot ``plan``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block; what it built is then aged into the oldest generation."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.freeze()  # every tracked object -> the permanent generation (no walk)
            gc.unfreeze()  # ... -> the oldest generation, where full collections still see it
            gc.enable()
