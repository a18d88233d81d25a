"""The seam to Google: credentials, the official ``google-cloud-run`` clients, and error translation.

This module and :mod:`reconciler.launch.cloud_run.launcher` are the only ones that import Google's SDKs; no
Google exception leaves :class:`Session`: every call is translated to a ``LaunchError``
(``LaunchAuthError`` for refused or missing credentials, ``retryable`` with ``retry_after`` for
throttling, 5xx and transport failures) and idempotent calls are retried by our own policy.

Choices, and why:

- **REST transport, no SDK retries.** The generated methods of ``run_v2`` have no default retry and
  we pass ``retry=None``, so the attempt count is ours (``call_with_retries``). Two retries stay in
  google-auth and are accounted for: the token endpoint request (up to 3 tries on 5xx/429) and
  up to two token refreshes (each followed by one new try) when the API answers 401.
- **OAuth2 access tokens, not self-signed JWTs.** A GAPIC client switches service-account keys to
  self-signed JWTs (``always_use_jwt_access=True``). We build its transport with that off, so a key
  is exchanged at its own ``token_uri`` once an hour (shared by the three clients): a revoked or
  disabled key fails early, as a ``RefreshError`` we can name, and sovereign or private token
  endpoints named in the key file are honoured.
- **Endpoint.** ``RECONCILE_CLOUD_RUN_ENDPOINT`` (an emulator or a private endpoint) becomes
  ``client_options.api_endpoint``; ``http://`` is kept for plain-HTTP emulators. Default:
  ``run.googleapis.com`` over HTTPS.
- **No credentials block** means Google's application default credentials, which google-auth
  reads from the process environment (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's ADC file, the
  metadata server); the project is the block's ``project``, else the key's ``project_id``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import google.auth
import google.auth.exceptions
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.api_core.future import polling
from google.cloud import run_v2
from google.cloud.run_v2.services.executions.transports.rest import ExecutionsRestTransport
from google.cloud.run_v2.services.jobs.transports.rest import JobsRestTransport
from google.cloud.run_v2.services.tasks.transports.rest import TasksRestTransport
from google.oauth2 import service_account
from google.protobuf import json_format

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import call_with_retries
from reconciler.infra.retry import retry_after as parse_retry_after
from reconciler.launch import blockrefs

ENDPOINT_ENV = "RECONCILE_CLOUD_RUN_ENDPOINT"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REQUEST_TIMEOUT = 30.0  # seconds for one HTTP request
OPERATION_TIMEOUT = 120.0  # seconds to wait for a job to be created or deleted
# Long-running operations: first look after 0.2 s, then back off to 5 s (the SDK starts at 1 s).
POLLING = polling.DEFAULT_POLLING.with_delay(initial=0.2, maximum=5.0, multiplier=1.5).with_timeout(
    OPERATION_TIMEOUT
)
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


class Missing(LaunchError):
    """The resource does not exist (HTTP 404)."""


class AlreadyExists(LaunchError):
    """The resource exists already (HTTP 409 ``ALREADY_EXISTS``)."""


class FailedPrecondition(LaunchError):
    """The resource is not in a state that allows the call (e.g. cancelling a finished execution)."""


@dataclass(frozen=True)
class Session:
    """Clients for one project and one set of credentials; ``who`` names them in error messages."""

    project: str
    who: str
    jobs: run_v2.JobsClient
    executions: run_v2.ExecutionsClient
    tasks: run_v2.TasksClient

    # -- calls: each translated; the idempotent ones retried ---------------------------------------

    def call(self, what: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """``fn()`` with Google's exceptions translated; retried unless ``retry`` is False."""

        def once() -> T:
            with gcp_errors(what, self.who):
                return fn()

        return call_with_retries(once) if retry else once()

    def get_job(self, name: str) -> run_v2.Job:
        return self.call(
            f"get job {name}", lambda: self.jobs.get_job(name=name, retry=None, timeout=REQUEST_TIMEOUT)
        )

    def create_job(self, parent: str, job_id: str, body: Mapping[str, Any]) -> run_v2.Job:
        """Create and wait for the job; ``AlreadyExists`` when someone else created it first."""
        message = self.call(
            f"build job {job_id}", lambda: run_v2.Job.from_json(json.dumps(body)), retry=False
        )

        def create() -> run_v2.Job:
            op = self.jobs.create_job(
                parent=parent, job=message, job_id=job_id, retry=None, timeout=REQUEST_TIMEOUT
            )
            return op.result(timeout=OPERATION_TIMEOUT, polling=POLLING)

        return self.call(f"create job {job_id}", create)

    def run_job_once(self, name: str, overrides: Mapping[str, Any]) -> str | None:
        """Start one execution (not retried here: the caller makes a retry safe).

        Returns the execution's name from the operation's metadata (an Execution, set as soon as the
        execution exists); ``None`` if the answer lacks it. The operation itself only ends with the
        execution, so it is never waited for.
        """
        request = run_v2.RunJobRequest(name=name)
        with gcp_errors(f"run job {name}", self.who):
            request.overrides = run_v2.RunJobRequest.Overrides.from_json(json.dumps(overrides))
            op = self.jobs.run_job(request=request, retry=None, timeout=REQUEST_TIMEOUT)
            metadata = op.metadata
            if metadata is None or not metadata.name:
                op.done(retry=None)  # one GetOperation: its metadata is documented to be the Execution
                metadata = op.metadata
            return str(metadata.name) if metadata is not None and metadata.name else None

    def list_jobs(self, parent: str) -> list[run_v2.Job]:
        return self.call(
            f"list jobs in {parent}",
            lambda: list(self.jobs.list_jobs(parent=parent, retry=None, timeout=REQUEST_TIMEOUT)),
        )

    def delete_job(self, name: str, *, etag: str) -> None:
        def delete() -> None:
            request = run_v2.DeleteJobRequest(name=name, etag=etag)
            self.jobs.delete_job(request=request, retry=None, timeout=REQUEST_TIMEOUT).result(
                timeout=OPERATION_TIMEOUT, polling=POLLING
            )

        self.call(f"delete job {name}", delete)

    def list_executions(self, job_name: str) -> list[run_v2.Execution]:
        def fetch() -> list[run_v2.Execution]:
            request = run_v2.ListExecutionsRequest(parent=job_name, page_size=100)
            return list(self.executions.list_executions(request=request, retry=None, timeout=REQUEST_TIMEOUT))

        return self.call(f"list executions of {job_name}", fetch)

    def get_execution(self, name: str) -> run_v2.Execution:
        return self.call(
            f"get execution {name}",
            lambda: self.executions.get_execution(name=name, retry=None, timeout=REQUEST_TIMEOUT),
        )

    def list_tasks(self, execution_name: str) -> list[run_v2.Task]:
        return self.call(
            f"list tasks of {execution_name}",
            lambda: list(self.tasks.list_tasks(parent=execution_name, retry=None, timeout=REQUEST_TIMEOUT)),
        )

    def cancel_execution(self, name: str) -> None:
        self.call(
            f"cancel execution {name}",
            lambda: self.executions.cancel_execution(name=name, retry=None, timeout=REQUEST_TIMEOUT),
        )

    def delete_execution(self, name: str) -> None:
        def delete() -> None:
            self.executions.delete_execution(name=name, retry=None, timeout=REQUEST_TIMEOUT).result(
                timeout=OPERATION_TIMEOUT, polling=POLLING
            )

        self.call(f"delete execution {name}", delete)

    def close(self) -> None:
        for client in (self.jobs, self.executions, self.tasks):
            client.transport.close()


def open_session(credentials_block: Any, *, environ: Mapping[str, str], who: str) -> Session:
    """Clients authenticated by the gcp-credentials block's data (or the application defaults)."""
    with gcp_errors("load credentials", who):
        credentials, project = _credentials(credentials_block, who=who)
    if not project:
        raise LaunchError(f"{who}: no Google Cloud project: set `project` in the gcp-credentials block")
    endpoint = environ.get(ENDPOINT_ENV, "").strip().rstrip("/")
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    with gcp_errors("create the Cloud Run clients", who):
        return Session(
            project=str(project),
            who=who,
            jobs=run_v2.JobsClient(
                credentials=credentials, client_options=options, transport=_oauth_transport(JobsRestTransport)
            ),
            executions=run_v2.ExecutionsClient(
                credentials=credentials,
                client_options=options,
                transport=_oauth_transport(ExecutionsRestTransport),
            ),
            tasks=run_v2.TasksClient(
                credentials=credentials,
                client_options=options,
                transport=_oauth_transport(TasksRestTransport),
            ),
        )


def _oauth_transport(cls: Callable[..., T]) -> Callable[..., T]:
    """The REST transport as the client builds it, minus self-signed JWTs (see the module doc)."""

    def make(**kwargs: Any) -> T:
        kwargs["always_use_jwt_access"] = False
        return cls(**kwargs)

    return make


def _credentials(block: Any, *, who: str) -> tuple[Any, str | None]:
    """``(credentials, project)`` from the block's data: key info, key file, or application defaults."""
    block = blockrefs.credentials_block(
        block,
        who=f"{who}: credentials",
        block_type="gcp-credentials",
        fallback="this machine's application default credentials",
    )
    project = block.get("project") or None
    info = block.get("service_account_info")
    if info:
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                raise LaunchAuthError(
                    f"{who}: service_account_info is not a JSON service account key"
                ) from None
        if not isinstance(info, Mapping):
            raise LaunchAuthError(
                f"{who}: service_account_info must be a JSON object (a service account key)"
            )
        try:
            credentials = service_account.Credentials.from_service_account_info(dict(info), scopes=SCOPES)
        except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError) as exc:
            missing = [k for k in ("client_email", "private_key", "token_uri") if k not in info]
            why = (
                f"missing {', '.join(missing)}"
                if missing
                else f"the key cannot be loaded ({type(exc).__name__})"
            )
            raise LaunchAuthError(
                f"{who}: service_account_info is not a usable service account key: {why}"
            ) from None
        return credentials, project or info.get("project_id")
    key_file = block.get("service_account_file")
    if key_file:
        key_file = os.path.expanduser(str(key_file))  # "~/keys/sa.json", as prefect-gcp expands it
        try:
            credentials = service_account.Credentials.from_service_account_file(str(key_file), scopes=SCOPES)
        except OSError as exc:
            raise LaunchAuthError(
                f"{who}: cannot read service_account_file {key_file}: {exc.strerror}"
            ) from None
        except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError):
            raise LaunchAuthError(
                f"{who}: service_account_file {key_file} is not a service account key"
            ) from None
        return credentials, project or credentials.project_id
    credentials, default_project = google.auth.default(scopes=list(SCOPES))
    return credentials, project or default_project


@contextmanager
def gcp_errors(what: str, who: str) -> Iterator[None]:
    """Translate Google's exceptions into our error tree (most specific first); never a secret."""
    try:
        yield
    except LaunchError:
        raise
    except google.auth.exceptions.RefreshError as exc:
        if exc.retryable:
            raise LaunchError(f"{what}: the token endpoint is unavailable", retryable=True) from None
        raise LaunchAuthError(
            f"Google refused {who} when asked for an access token: {_refresh_reason(exc)}"
        ) from None
    except google.auth.exceptions.DefaultCredentialsError:
        raise LaunchAuthError(
            f"{who}: no gcp-credentials block and no application default credentials on this machine"
        ) from None
    except google.auth.exceptions.TransportError as exc:
        raise LaunchError(
            f"{what}: cannot reach Google's token endpoint ({type(exc).__name__})", retryable=True
        ) from None
    except api_exceptions.GoogleAPICallError as exc:
        raise _api_error(exc, what, who) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise LaunchError(f"{what}: cannot reach Cloud Run ({type(exc).__name__})", retryable=True) from exc
    except concurrent.futures.TimeoutError:
        raise LaunchError(f"{what}: no answer within {OPERATION_TIMEOUT:g}s", retryable=True) from None
    except json_format.ParseError as exc:
        raise LaunchError(f"{what}: not a valid Cloud Run v2 message: {exc}") from None


def _api_error(exc: api_exceptions.GoogleAPICallError, what: str, who: str) -> LaunchError:
    detail = _detail(exc)
    status = _status_name(exc)
    if isinstance(exc, api_exceptions.Unauthorized):
        return LaunchAuthError(f"{what}: Cloud Run refused {who} (UNAUTHENTICATED): {detail}")
    if isinstance(exc, api_exceptions.Forbidden):
        return LaunchAuthError(f"{what}: permission denied to {who} (PERMISSION_DENIED): {detail}")
    if isinstance(exc, api_exceptions.NotFound):
        return Missing(f"{what}: {detail}")
    if isinstance(exc, api_exceptions.AlreadyExists) or status == "ALREADY_EXISTS":
        return AlreadyExists(f"{what}: {detail}")
    if isinstance(exc, api_exceptions.FailedPrecondition) or status == "FAILED_PRECONDITION":
        return FailedPrecondition(f"{what}: {detail}")
    code = exc.code if isinstance(exc.code, int) else None
    if code in RETRYABLE_STATUS or isinstance(
        exc, api_exceptions.TooManyRequests | api_exceptions.ResourceExhausted | api_exceptions.ServerError
    ):
        return LaunchError(
            f"{what}: {status or code}: {detail}", retryable=True, retry_after=_retry_after(exc)
        )
    return LaunchError(f"{what}: {status or code}: {detail}")


def _body(exc: api_exceptions.GoogleAPICallError) -> Mapping[str, Any]:
    response = getattr(exc, "response", None)
    if isinstance(response, requests.Response):
        try:
            payload = response.json()
        except ValueError:
            return {}
        error = payload.get("error") if isinstance(payload, Mapping) else None
        return error if isinstance(error, Mapping) else {}
    return {}


def _detail(exc: api_exceptions.GoogleAPICallError) -> str:
    return str(_body(exc).get("message") or exc.message or type(exc).__name__)


def _status_name(exc: api_exceptions.GoogleAPICallError) -> str:
    status = _body(exc).get("status")
    if status:
        return str(status)
    grpc_status = getattr(exc, "grpc_status_code", None)
    return grpc_status.name if grpc_status is not None else ""


def _retry_after(exc: api_exceptions.GoogleAPICallError) -> float | None:
    """Seconds from the response's ``Retry-After`` header, if the error carries a response."""
    response = getattr(exc, "response", None)
    return parse_retry_after(response.headers) if isinstance(response, requests.Response) else None


def _refresh_reason(exc: google.auth.exceptions.RefreshError) -> str:
    """The token endpoint's ``error: description`` (it never echoes the key), kept short."""
    first = exc.args[0] if exc.args else ""
    text = first if isinstance(first, str) else type(exc).__name__
    return text[:200]
