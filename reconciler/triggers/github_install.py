"""Which pip extras the Action installs: only what this project's pools and state need.

``action.yml`` first installs the base package from the constraints file shipped with the action,
then asks ``python -m reconciler.triggers.github_install DIR [--state-scheme SCHEME]`` which extras
to add, and installs those (with the same constraints). A project of ``process`` pools on a Prefect
server needs none; an ``ecs:push`` pool adds ``aws``; a PostgreSQL state adds ``postgres``.

The file is the pull request's, so it is read with the same bounded YAML reader as everything else,
and it can only pick among the extras this mapping knows: a pull request cannot make the Action
install anything else. An unreadable file needs nothing here: the reconcile step reports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.desired import yamlfile
from reconciler.errors import ReconcileError
from reconciler.launch.registry import extra_for
from reconciler.pooltypes import registry as pooltypes

STATE_EXTRAS = {"postgres": "postgres", "postgresql": "postgres"}  # state URL scheme -> extra


def pool_types(document: Any) -> list[str]:
    """The ``type`` of every work pool the document declares (anything malformed is skipped)."""
    pools = document.get("work_pools") if isinstance(document, dict) else None
    if not isinstance(pools, list):
        return []
    return [str(p["type"]) for p in pools if isinstance(p, dict) and isinstance(p.get("type"), str)]


def extras(types: Iterable[str], state_scheme: str = "") -> list[str]:
    """The sorted extras for these pool types and this state URL scheme (``postgresql+psycopg``)."""
    found: set[str] = set()
    for slug in types:
        pool_type = pooltypes.get(slug)
        extra = extra_for(pool_type.launcher) if pool_type else None
        if extra:
            found.add(extra)
    backend = state_scheme.lower().partition("+")[0]
    if backend in STATE_EXTRAS:
        found.add(STATE_EXTRAS[backend])
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.triggers.github_install")
    parser.add_argument("project_dir", type=Path)
    parser.add_argument("--file", default="prefect.yaml")
    parser.add_argument("--state-scheme", default="", help="the state URL's scheme (never the URL)")
    args = parser.parse_args(argv)
    try:
        text = (args.project_dir / args.file).read_text(encoding="utf-8")
        document = yamlfile.parse(text, file=args.file)
    except (OSError, UnicodeDecodeError, ReconcileError):
        document = None
    sys.stdout.write(",".join(extras(pool_types(document), args.state_scheme)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
