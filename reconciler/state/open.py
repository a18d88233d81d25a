"""Pick a Store backend from a URL."""

from __future__ import annotations

from reconciler.errors import UsageError
from reconciler.infra.redact import redact_url
from reconciler.state.base import Store


def open_store(url: str, *, project: str) -> Store:
    """``sqlite:///path``, ``postgresql+psycopg://...``, ``prefect+http(s)://host/api``, ``prefect://``, ``memory://``.

    Opening never creates a SQLite file: a command that only reads leaves no state behind."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from reconciler.state.memory import MemoryStore

        return MemoryStore(project=project, url=url)
    if scheme.startswith(("sqlite", "postgresql", "postgres")):
        from reconciler.state.sql.store import SqlStore

        return SqlStore(url, project=project, create=False)
    if scheme.startswith("prefect"):
        from reconciler.state.prefect.api import PrefectStore

        return PrefectStore(url, project=project)
    raise UsageError(
        f"unsupported state URL {redact_url(url)!r}: use sqlite:///PATH, postgresql+psycopg://..., or prefect+http(s)://HOST/api"
    )
