"""Placeholders in the desired state, resolved the way the design fixes it.

* ``{{ $NAME }}`` is resolved at plan time from the environment given to the loader. If the value is
  sensitive (a secret field of its block type, or a variable whose name contains SECRET, TOKEN,
  PASSWORD or KEY) the string becomes a :class:`~reconciler.objects.Secret`: its template and an HMAC
  fingerprint, never the value.
* ``{{ prefect.blocks.TYPE.NAME }}`` stays verbatim: a reference resolved by the launcher at run time.
* Step outputs (``{{ build-image.image }}``), ``{{ prefect.variables.x }}`` and ``{{ ctx.* }}`` stay
  verbatim too, so they never make a plan flap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.objects import ENV_PLACEHOLDER, SECRET_KEY, Secret

Path = tuple[str | int, ...]

PLACEHOLDER = re.compile(r"\{\{\s*([\w\.\-\[\]$]+)\s*\}\}")
BLOCK_REFERENCE = re.compile(r"\{\{\s*prefect\.blocks\.([\w\-]+)\.([\w\-]+)((?:\.[\w\-]+)*)\s*\}\}")
_SENSITIVE_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY", re.IGNORECASE)
_STEP_OUTPUT = re.compile(r"^\s*([A-Za-z0-9][\w\-]*)\.[\w\-\.]+\s*$")
_NOT_STEPS = frozenset({"prefect", "ctx", "flow_run", "flow", "deployment"})


def is_sensitive_env(name: str) -> bool:
    """Whether an env placeholder is a secret: its name contains SECRET, TOKEN, PASSWORD or KEY (any case)."""
    return _SENSITIVE_NAME.search(name) is not None


def fingerprint(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a secret value under the store's key: comparable, not reversible."""
    return "hmac-sha256:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def block_references(value: Any) -> list[tuple[str, str]]:
    """``(type, name)`` of every ``{{ prefect.blocks.TYPE.NAME }}`` inside a value."""
    found: list[tuple[str, str]] = []
    _collect_block_refs(value, found)
    return found


def _collect_block_refs(value: Any, found: list[tuple[str, str]]) -> None:
    kind = type(value)
    if kind is str:
        if "{{" in value:
            found.extend((m.group(1), m.group(2)) for m in BLOCK_REFERENCE.finditer(value))
    elif kind is dict:
        for v in value.values():
            _collect_block_refs(v, found)
    elif kind is list:
        for v in value:
            _collect_block_refs(v, found)


def step_output_source(value: Any) -> str | None:
    """The build/push step id a whole-string placeholder like ``{{ build-image.image }}`` comes from."""
    if not isinstance(value, str):
        return None
    match = PLACEHOLDER.fullmatch(value.strip())
    if not match or match.group(1).startswith("$"):
        return None
    step = _STEP_OUTPUT.match(match.group(1))
    if step and step.group(1) not in _NOT_STEPS:
        return step.group(1)
    return None


@dataclass
class Problem:
    """A resolution problem at a path of the document (turned into a Diagnostic by the loader)."""

    path: Path
    message: str


@dataclass
class EnvResolver:
    """Resolves ``{{ $NAME }}`` placeholders against one environment and one fingerprint key.

    The key is asked for only when a secret is met (it lives in the store, which a file without
    secrets never needs to open for validation).
    """

    environ: Mapping[str, str]
    key_source: Callable[[], bytes]
    problems: list[Problem] = field(default_factory=list)
    _key: bytes | None = None
    active: bool = True  # False when the file has no placeholder at all: nothing to walk

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self.key_source()
        return self._key

    def resolve(self, value: Any, path: Path, *, sensitive: bool = False) -> Any:
        """A copy of ``value`` with env placeholders resolved (or turned into Secrets)."""
        if not self.active:
            return value
        if isinstance(value, str):
            return self._resolve_string(value, path, sensitive=sensitive) if "{{" in value else value
        if isinstance(value, dict):
            if SECRET_KEY in value:
                self.problems.append(Problem((*path, SECRET_KEY), f"the key {SECRET_KEY!r} is reserved"))
            return {k: self.resolve(v, (*path, k), sensitive=sensitive) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, (*path, i), sensitive=sensitive) for i, v in enumerate(value)]
        return value

    def resolve_secret_field(self, value: Any, path: Path, *, what: str) -> Any:
        """A field its type marks secret: it must come from env placeholders, and becomes a Secret."""
        if value is None:
            return None
        if not isinstance(value, str) or not ENV_PLACEHOLDER.search(value):
            self.problems.append(
                Problem(
                    path,
                    f"{what} is secret: give it as an environment placeholder such as "
                    '"{{ $MY_SECRET }}", not as a literal value',
                )
            )
            return None
        return self._resolve_string(value, path, sensitive=True)

    def _resolve_string(self, text: str, path: Path, *, sensitive: bool) -> Any:
        names = ENV_PLACEHOLDER.findall(text)
        if not names:
            return text
        missing = [n for n in names if n not in self.environ]
        for name in dict.fromkeys(missing):
            self.problems.append(Problem(path, f"environment variable {name} is not set"))
        if missing:
            return text
        resolved = ENV_PLACEHOLDER.sub(lambda m: self.environ[m.group(1)], text)
        if sensitive or any(is_sensitive_env(n) for n in names):
            return Secret(template=text, fingerprint=fingerprint(self.key, resolved))
        return resolved
