"""How to install an extra, said the way that works for how this copy was installed.

``pip install 'prefect-reconciler[aws]'`` fails for a clone installed with ``pip install -e .`` (the
package is not on an index); such a copy is told ``pip install -e '/path/to/clone[aws]'``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "prefect-reconciler"


def install_hint(extra: str) -> str:
    """The pip command that adds ``extra`` to this installation."""
    source = _local_source()
    if source is not None:
        return f"pip install -e {shlex.quote(f'{source}[{extra}]')}"
    return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"


@functools.cache
def _local_source() -> str | None:
    """The project directory this copy was installed from (editable or local), or runs from (a clone
    on PYTHONPATH); None for an install from an index."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
        raw = dist.read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        raw = None
    if raw:
        url = json.loads(raw).get("url", "")
        if url.startswith("file://"):
            return unquote(urlparse(url).path)
    here = Path(__file__).resolve().parents[2]  # reconciler/infra/install.py -> the checkout
    if (here / "pyproject.toml").is_file() and raw is None:
        return str(here)
    return None
