"""The environment a ``process`` run starts from: the launcher's, or only an allow-list of it.

A ``process`` run executes flow code on the launching machine. Launched by the GitHub Action, that
machine's environment holds the workflow's secrets: the ``GITHUB_TOKEN``, the state URL, cloud keys,
the runner's ``ACTIONS_*`` tokens. None of that is the flow's to read. So when the launcher runs
isolated (:func:`isolated`: under GitHub Actions, or ``RECONCILE_PROCESS_ENV=isolated`` anywhere), a
run gets only

* the variables a process needs to work at all: :data:`ALLOWED` and the :data:`ALLOWED_PREFIXES`
  (``PATH``, ``HOME``, ``LANG``, ``LC_*``, ``TZ``, ``PYTHON*``, ``VIRTUAL_ENV``, temp dirs, CA
  bundles), and
* what its pool and deployment declare (``job_variables.env``, placeholders resolved at launch),
  plus the run contract (``RECONCILE_*``) and what its store needs (a Prefect server's URL and key),
  all added by the launcher on top of this base.

Elsewhere the run inherits the launcher's environment, as Prefect's process worker does.
"""

from __future__ import annotations

from collections.abc import Mapping

ISOLATE_ENV = "RECONCILE_PROCESS_ENV"
ALLOWED: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "TEMP",
        "TMP",
        "VIRTUAL_ENV",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
ALLOWED_PREFIXES: tuple[str, ...] = ("LC_", "PYTHON")


def isolated(environ: Mapping[str, str]) -> bool:
    """Whether runs start from the allow-list: under GitHub Actions, or when asked explicitly."""
    return environ.get("GITHUB_ACTIONS") == "true" or environ.get(ISOLATE_ENV) == "isolated"


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a run starts from, before its job's own variables are added."""
    if not isolated(environ):
        return dict(environ)
    return {k: v for k, v in environ.items() if k in ALLOWED or k.startswith(ALLOWED_PREFIXES)}
