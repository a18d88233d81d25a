"""Placeholders in the desired state, resolved the way the design fixes it.

``{{ $NAME }}`` (an environment placeholder) is resolved before anything is checked, by Prefect's
rule (text substitution, in one pass), so its value is validated exactly like a literal written in
the same place. What happens to the value then:

* **Sensitive unless the operator says otherwise.** Every environment value is treated as a secret:
  the body holds a :class:`~reconciler.objects.Secret` (its template and an HMAC fingerprint, never
  the value), shown as ``(from $NAME)``. Only names the *operator* lists as public (``--public-env``
  or ``RECONCILE_PUBLIC_ENV``, see :func:`public_env_names`; never the file, which a pull request
  controls) are stored and shown as plain values. A field its type marks secret is always a Secret.
* **Secrets only where a secret can live.** A Secret can stand for a value of a deployment's
  ``description``, ``version``, ``parameters`` and job variables, a pool's job variables and
  template, and a block's data (:data:`SECRET_CAPABLE`). Anywhere else (names, entrypoints, tags,
  schedules, work pool and queue names, triggers, run_on rules) the value shapes what the plan shows
  and does, so a placeholder there must be public.
* **The reconciler's own configuration is out of reach.** :data:`RESERVED_ENV` names the variables
  that configure this tool and Prefect's API access, the CI runner's internals, and the credentials
  of GitHub, Prefect and the cloud SDKs; a placeholder naming one is an error wherever it is (pull
  steps included), so a pull request can never copy the state URL, an API key, the GitHub token or
  cloud credentials into an object. Public context such as ``GITHUB_SHA`` or ``AWS_REGION`` stays
  readable (and sensitive unless listed as public), as real ``prefect.yaml`` files use it.
* **Unset variables.** At ``plan``/``apply`` (``strict``) an unset variable is an error at the
  placeholder; under ``validate`` it is a warning ("not checked: $X unset") and the value is left
  unchecked.

Other placeholders stay verbatim: ``{{ prefect.blocks.TYPE.NAME }}`` is a reference resolved by the
launcher at run time; step outputs (``{{ build-image.image }}``), ``{{ prefect.variables.x }}`` and
``{{ ctx.* }}`` never make a plan flap. Build, push and pull steps are not resolved at plan time
(Prefect resolves them when it runs them).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from reconciler.errors import UsageError
from reconciler.objects import ENV_PLACEHOLDER, SECRET_KEY, Secret, fingerprint

Path = tuple[str | int, ...]

PLACEHOLDER = re.compile(r"\{\{\s*([\w\.\-\[\]$]+)\s*\}\}")
BLOCK_REFERENCE = re.compile(r"\{\{\s*prefect\.blocks\.([\w\-]+)\.([\w\-]+)((?:\.[\w\-]+)*)\s*\}\}")
_SENSITIVE_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY", re.IGNORECASE)
_STEP_OUTPUT = re.compile(r"^\s*([A-Za-z0-9][\w\-]*)\.[\w\-\.]+\s*$")
_NOT_STEPS = frozenset({"prefect", "ctx", "flow_run", "flow", "deployment"})


_CREDENTIAL_WORDS = (
    "TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "CERTIFICATE", "SESSION",
    "SERVICE_ACCOUNT", "PRIVATE",
)  # fmt: skip
_CREDENTIAL_NAMESPACES = ("GITHUB_", "GH_", "AWS_", "AZURE_", "ARM_", "GOOGLE_", "GCP_", "CLOUDSDK_")

RESERVED_ENV: tuple[str, ...] = (
    "RECONCILE_*",  # this tool: the state URL, debug and public-name settings
    "PREFECT_API_*",  # Prefect's API URL, key, auth string, TLS settings
    *(f"PREFECT_*{word}*" for word in _CREDENTIAL_WORDS),  # any other Prefect credential
    "ACTIONS_*",  # the Actions runner's cache, results and OIDC request tokens and URLs
    "RUNNER_*",
    # GitHub's and the cloud SDKs' credentials (GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, AZURE_CLIENT_SECRET,
    # GOOGLE_APPLICATION_CREDENTIALS, ...); their other variables (GITHUB_SHA, AWS_REGION) stay readable
    *(f"{space}*{word}*" for space in _CREDENTIAL_NAMESPACES for word in _CREDENTIAL_WORDS),
)
"""Environment variables no placeholder may read (shell patterns, any case): the reconciler's own
configuration, the CI runner's internals, and every credential in GitHub's, Prefect's and the cloud
SDKs' namespaces."""

_RESERVED = re.compile("|".join(fnmatch.translate(p) for p in RESERVED_ENV), re.IGNORECASE)
_CLOUD_CREDENTIAL = re.compile(
    "|".join(
        fnmatch.translate(f"{space}*{word}*")
        for space in ("AWS_", "AZURE_", "ARM_", "GOOGLE_", "GCP_", "CLOUDSDK_")
        for word in _CREDENTIAL_WORDS
    ),
    re.IGNORECASE,
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PUBLIC_ENV_VARIABLE = "RECONCILE_PUBLIC_ENV"

SECRET_CAPABLE: tuple[tuple[str | None, ...], ...] = (
    ("deployments", None, "description"),
    ("deployments", None, "version"),
    ("deployments", None, "parameters"),
    ("deployments", None, "work_pool", "job_variables"),
    ("work_pools", None, "job_variables"),
    ("work_pools", None, "base_job_template"),
    ("blocks", None, "data"),
)
"""Where a value may be a Secret: these paths and everything below them (None: any index)."""

_NOT_RESOLVED_AT_PLAN = frozenset({"build", "push", "pull"})
_REDACT_ANYWHERE = 6  # hidden values this long are cut from every message, not only their own field's


def is_reserved_env(name: str, *, in_block_data: bool = False) -> bool:
    """A variable of the reconciler's own configuration (:data:`RESERVED_ENV`).

    Inside a block's ``data`` a cloud SDK's credential variable is allowed (the design's own example
    reads ``{{ $AWS_SECRET_ACCESS_KEY }}`` into an aws-credentials block): that is where a cloud
    credential belongs, and its value is a Secret there, never shown. The tool's own configuration,
    Prefect's API settings, the runner's internals and GitHub's token stay out of reach everywhere."""
    if _RESERVED.match(name) is None:
        return False
    return not (in_block_data and _CLOUD_CREDENTIAL.match(name) is not None)


def public_env_names(environ: Mapping[str, str], cli_names: Iterable[str] = ()) -> frozenset[str]:
    """The names the operator allows to be shown: ``RECONCILE_PUBLIC_ENV`` (comma or space separated)
    plus ``--public-env`` options. Raises UsageError for a name that is not a variable name or is
    reserved (those can never be read, so listing one is a mistake worth stopping for)."""
    names = re.split(r"[\s,]+", environ.get(PUBLIC_ENV_VARIABLE, "")) + [
        part for given in cli_names for part in re.split(r"[\s,]+", given)
    ]
    public = frozenset(n for n in names if n)
    for name in sorted(public):
        if not _ENV_NAME.fullmatch(name):
            raise UsageError(f"public environment name {name!r} is not a variable name")
        if is_reserved_env(name):
            raise UsageError(f"{name} is the reconciler's own configuration and can never be public")
    return public


def is_secret_capable(path: Path) -> bool:
    """Whether a value at ``path`` may be stored as a Secret (see :data:`SECRET_CAPABLE`)."""
    for pattern in SECRET_CAPABLE:
        if len(path) >= len(pattern) and all(
            want is None or want == got for want, got in zip(pattern, path, strict=False)
        ):
            return True
    return False


def is_sensitive_env(name: str) -> bool:
    """Whether a variable's *name* looks secret (contains SECRET, TOKEN, PASSWORD or KEY, any case).

    Only a naming hint for places that pick names (``import`` suggests sensitive-looking ones, ACI
    sends such container variables as secure values); what the loader treats as sensitive is every
    placeholder not listed as public (see the module docstring)."""
    return _SENSITIVE_NAME.search(name) is not None


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


@dataclass(frozen=True)
class EnvSource:
    """A string of the file that environment placeholders were substituted into."""

    template: str
    value: str
    public: bool  # every name it reads is public


@dataclass
class EnvResolver:
    """Resolves ``{{ $NAME }}`` placeholders against one environment and one fingerprint key.

    :meth:`substitute` runs first, over the whole document: it returns the document with every
    placeholder replaced by its value and remembers where each value came from. The loader checks
    that document like any other; its per-field code then calls :meth:`resolve` /
    :meth:`resolve_secret_field`, which turn remembered values into Secrets where they must not be
    shown. The key is asked for only when a Secret is made (it lives in the store, which a file
    without placeholders never needs to open for validation).
    """

    environ: Mapping[str, str]
    key_source: Callable[[], bytes]
    public: frozenset[str] = frozenset()
    strict: bool = True
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    sources: dict[Path, EnvSource] = field(default_factory=dict)
    unresolved: set[Path] = field(default_factory=set)  # placeholders left as written (not checked)
    _key: bytes | None = None
    active: bool = True  # False when the file has no placeholder at all: nothing to walk

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self.key_source()
        return self._key

    # -- before checking: the whole document ---------------------------------------------------------

    def substitute(self, document: Any) -> Any:
        """The document with environment placeholders replaced by their values (where all are set
        and none is reserved); build/push/pull steps are left as written, but checked for reserved
        names."""
        if not self.active:
            return document
        return self._substitute(document, ())

    def _substitute(self, value: Any, path: Path) -> Any:
        """A container with its placeholder strings replaced: a copy only where something changed
        (exact type checks and no path for plain scalars: 10,000 deployments walk in milliseconds)."""
        kind = type(value)
        if kind is dict:
            changed: dict[Any, Any] | None = None
            for key, item in value.items():
                new = self._substitute_item(item, path, key)
                if new is not item:
                    changed = dict(value) if changed is None else changed
                    changed[key] = new
            return value if changed is None else changed
        if kind is list:
            copied: list[Any] | None = None
            for index, item in enumerate(value):
                new = self._substitute_item(item, path, index)
                if new is not item:
                    copied = list(value) if copied is None else copied
                    copied[index] = new
            return value if copied is None else copied
        if isinstance(value, str) and "{{" in value:
            return self._substitute_string(value, path)
        return value

    def _substitute_item(self, item: Any, path: Path, key: str | int) -> Any:
        kind = type(item)
        if kind is str:
            return self._substitute_string(item, (*path, key)) if "{{" in item else item
        if kind is dict or kind is list:
            return self._substitute(item, (*path, key)) if _may_hold_placeholders(item) else item
        return item

    def _substitute_string(self, text: str, path: Path) -> str:
        names = list(dict.fromkeys(ENV_PLACEHOLDER.findall(text)))
        if not names:
            return text
        in_block_data = len(path) >= 3 and path[0] == "blocks" and path[2] == "data"
        reserved = [n for n in names if is_reserved_env(n, in_block_data=in_block_data)]
        for name in reserved:
            self.problems.append(
                Problem(
                    path,
                    f"{{{{ ${name} }}}}: {name} belongs to the reconciler's own configuration "
                    "(credentials, CI or state settings); a placeholder can never read it",
                )
            )
        if _steps_path(path):  # kept as written: resolved by whatever runs the step
            return text
        missing = [n for n in names if n not in self.environ and n not in reserved]
        for name in missing:
            if self.strict:
                self.problems.append(Problem(path, f"environment variable {name} is not set"))
            else:
                self.warnings.append(Problem(path, f"warning: not checked: ${name} unset"))
        if reserved or missing:
            self.unresolved.add(path)
            return text
        value = ENV_PLACEHOLDER.sub(lambda m: self.environ[m.group(1)], text)
        public = all(n in self.public for n in names)
        self.sources[path] = EnvSource(template=text, value=value, public=public)
        if not public and not is_secret_capable(path):
            hidden = ", ".join(f"${n}" for n in names if n not in self.public)
            message = (
                f"{hidden} is not a public environment variable, and this field is shown as it "
                "is in plans: allow it with --public-env (or RECONCILE_PUBLIC_ENV) if its value "
                "may be shown, else write the value in the file"
            )
            # validate shows no value: there it is a warning (plan and apply refuse it)
            (self.problems if self.strict else self.warnings).append(
                Problem(path, message if self.strict else f"warning: {message}")
            )
        return value

    # -- while building bodies: one field -------------------------------------------------------------

    def resolve(self, value: Any, path: Path, *, sensitive: bool = False) -> Any:
        """A copy of ``value`` with every substituted string that must not be shown as a Secret."""
        if not self.active:
            return value
        if isinstance(value, str):
            source = self.sources.get(path)
            # elsewhere a non-public value is already an error, and the field's code wants its type
            if source is not None and (sensitive or not source.public) and is_secret_capable(path):
                return Secret(template=source.template, fingerprint=fingerprint(self.key, source.value))
            return value
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
        source = self.sources.get(path)
        if source is not None:
            return Secret(template=source.template, fingerprint=fingerprint(self.key, source.value))
        if path in self.unresolved:  # already reported (unset or reserved)
            return None
        self.problems.append(
            Problem(
                path,
                f"{what} is secret: give it as an environment placeholder such as "
                '"{{ $MY_SECRET }}", not as a literal value',
            )
        )
        return None

    def forget(self, path: Path) -> None:
        """Drop the findings at ``path``: a check reported the placeholder there in its own terms
        (and its report is not to be filtered as being about an unresolved placeholder)."""
        self.unresolved.discard(path)
        self.problems = [p for p in self.problems if p.path != path]
        self.warnings = [w for w in self.warnings if w.path != path]

    def redact(self, message: str, path: Path) -> str:
        """``message`` without the value of any non-public placeholder (a check's message may quote the
        value it refused): at, above or below ``path`` whatever its length, elsewhere when it is long
        enough not to be an ordinary word of the message."""
        for where, source in self.sources.items():
            if source.public or not source.value:
                continue
            if len(source.value) < _REDACT_ANYWHERE and not _related(where, path):
                continue
            # the value as a word of its own: ``deployments[0]`` keeps its index when the value is 0
            bounded = r"(?<![\w\[])" + re.escape(source.value) + r"(?![\w\]])"
            message = re.sub(bounded, lambda _m, s=source: s.template, message)
        return message


def _may_hold_placeholders(container: Any) -> bool:
    """Whether a container has ``{{`` anywhere below it: one orjson pass at C speed lets the walk skip
    the subtrees (most of a large file) that have none."""
    try:
        return b"{{" in orjson.dumps(container)
    except TypeError:  # a value JSON cannot hold (a !!set, !!binary): walk it
        return True


def _related(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _steps_path(path: Path) -> bool:
    """Build, push and pull steps, top-level or a deployment's (Prefect resolves them when run)."""
    if path and path[0] in _NOT_RESOLVED_AT_PLAN:
        return True
    return len(path) >= 3 and path[0] == "deployments" and path[2] in _NOT_RESOLVED_AT_PLAN
