"""boto3 sessions, clients and error translation for the ``ecs`` launcher (from an aws-credentials block).

One ``boto3.Session`` per distinct credentials (and one client per service and region on it) is
kept for the launcher's life: sessions are costly to build and clients are thread-safe. The block's
fields mean what they mean in prefect-aws (``AwsCredentials``); without a block the launching
process's environment (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_REGION``...) and then boto3's
default chain apply. Endpoints follow AWS's documented precedence: the block's
``aws_client_parameters.endpoint_url``, then ``AWS_ENDPOINT_URL_<SERVICE>``, then ``AWS_ENDPOINT_URL``
(how one points the launcher at a private endpoint or at moto).

botocore's own retries are switched off (one attempt per call): the launcher retries with
``reconciler.infra.retry`` so the attempt count, backoff and idempotency checks are ours.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import orjson

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import retry_after as parse_retry_after
from reconciler.launch import blockrefs

# Service name -> the suffix of its AWS_ENDPOINT_URL_<SERVICE> variable (the service id, upper snake).
_ENDPOINT_ENV = {"ecs": "ECS", "ec2": "EC2", "logs": "CLOUDWATCH_LOGS", "sts": "STS"}
_SESSION_FIELDS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "profile_name",
)
_REFRESH_BEFORE = timedelta(minutes=5)
_ASSUMED_SESSION_NAME = "prefect-reconciler"


@dataclass(frozen=True)
class Credentials:
    """The aws-credentials block data of one job (secrets resolved; kept in memory only)."""

    data: Mapping[str, Any]

    @classmethod
    def of(cls, configuration: Mapping[str, Any], *, pool: str = "?") -> Credentials:
        """The block's data; a value that is set but not block data is refused, never ignored.

        Ignoring it would let boto3 fall back to this machine's default chain: another account.
        """
        data = blockrefs.credentials_block(
            configuration.get("aws_credentials"),
            who=f"aws_credentials of work pool {pool!r}",
            block_type="aws-credentials",
            fallback="this machine's AWS credentials",
        )
        return cls(dict(data))

    @property
    def key(self) -> str:
        """A digest naming these credentials in the caches (the values themselves are not kept twice)."""
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()

    @property
    def from_block(self) -> bool:
        return bool(self.data)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Strings that must never appear in a message (scrubbed from AWS error text)."""
        names = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        return tuple(str(self.data[n]) for n in names if self.data.get(n))

    @property
    def client_parameters(self) -> Mapping[str, Any]:
        return self.data.get("aws_client_parameters") or {}


@dataclass
class _Session:
    session: boto3.Session
    expires_at: datetime | None  # assumed-role credentials expire; None = the session refreshes itself


class AwsClients:
    """Sessions and clients, cached per credentials; safe to share between threads."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)
        self._sessions: dict[str, _Session] = {}
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.RLock()

    def client(self, service: str, credentials: Credentials, *, region: str | None = None) -> Any:
        """A client for ``service`` (``ecs``, ``ec2``, ``logs``) in ``region`` (default: the session's)."""
        with self._lock:
            entry = self._session(credentials)
            key = (credentials.key, service, region)
            client = self._clients.get(key)
            if client is None:
                client = self._make_client(entry.session, service, credentials, region)
                self._clients[key] = client
            return client

    def region(self, credentials: Credentials) -> str | None:
        with self._lock:
            return self._session(credentials).session.region_name

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._sessions.clear()

    # -- building -----------------------------------------------------------------------------------

    def _session(self, credentials: Credentials) -> _Session:
        entry = self._sessions.get(credentials.key)
        now = datetime.now(UTC)
        if entry is not None and (entry.expires_at is None or entry.expires_at - _REFRESH_BEFORE > now):
            return entry
        if entry is not None:  # assumed-role credentials about to expire: assume again
            self._clients = {k: c for k, c in self._clients.items() if k[0] != credentials.key}
        entry = self._build_session(credentials)
        self._sessions[credentials.key] = entry
        return entry

    def _build_session(self, credentials: Credentials) -> _Session:
        data = credentials.data
        kwargs = {name: data[name] for name in _SESSION_FIELDS if data.get(name)}
        env = self._environ
        if "aws_access_key_id" not in kwargs and "profile_name" not in kwargs:
            if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
                kwargs["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
                kwargs["aws_secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
                if env.get("AWS_SESSION_TOKEN"):
                    kwargs["aws_session_token"] = env["AWS_SESSION_TOKEN"]
            elif env.get("AWS_PROFILE"):
                kwargs["profile_name"] = env["AWS_PROFILE"]
        if "region_name" not in kwargs and (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
            kwargs["region_name"] = env.get("AWS_REGION") or env["AWS_DEFAULT_REGION"]
        session = boto3.Session(**kwargs)
        role = data.get("assume_role_arn")
        if not role:
            return _Session(session, None)
        sts = self._make_client(session, "sts", credentials, None)
        try:
            extra = dict(data.get("assume_role_kwargs") or {})
            extra.setdefault("RoleSessionName", _ASSUMED_SESSION_NAME)
            assumed = sts.assume_role(RoleArn=str(role), **extra)["Credentials"]
        finally:
            sts.close()
        temporary = boto3.Session(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
            region_name=session.region_name,
        )
        expires = assumed.get("Expiration")
        return _Session(temporary, expires if isinstance(expires, datetime) else None)

    def _make_client(
        self, session: boto3.Session, service: str, credentials: Credentials, region: str | None
    ) -> Any:
        params = credentials.client_parameters
        config_args = dict(params.get("config") or {})
        config_args["retries"] = {"total_max_attempts": 1, "mode": "standard"}  # ours, see the module doc
        try:
            config = botocore.config.Config(**config_args)
        except TypeError as exc:
            raise LaunchError(f"aws_client_parameters.config of the aws-credentials block: {exc}") from None
        kwargs: dict[str, Any] = {"config": config}
        if region:
            kwargs["region_name"] = region
        endpoint = params.get("endpoint_url") or self._endpoint_from_env(service)
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        if params.get("api_version"):
            kwargs["api_version"] = params["api_version"]
        if params.get("use_ssl") is False:
            kwargs["use_ssl"] = False
        verify = params.get("verify_cert_path") or params.get("verify")
        if verify is not None and verify is not True:
            kwargs["verify"] = verify
        return session.client(service, **kwargs)

    def _endpoint_from_env(self, service: str) -> str | None:
        env = self._environ
        if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
            return None
        return env.get(f"AWS_ENDPOINT_URL_{_ENDPOINT_ENV.get(service, service.upper())}") or env.get(
            "AWS_ENDPOINT_URL"
        )


_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
    }
)
_AUTH = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "NotAuthorized",
    }
)
_PARAM_VALUE = re.compile(r"value: .*?, type:", re.DOTALL)


class AwsCallError(LaunchError):
    """An AWS API error that is not about credentials; ``code`` is AWS's error code."""

    def __init__(
        self, message: str, *, code: str, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.code = code


@dataclass(frozen=True)
class JobAws:
    """One job's view of AWS: its credentials, region, and what an error message may name.

    Every botocore exception raised inside :meth:`errors` leaves as a ``LaunchError``: auth failures
    as ``LaunchAuthError`` naming the pool and where its credentials come from (never a value),
    throttling and 5xx as retryable (with Retry-After), the rest as ``AwsCallError`` with AWS's code.
    """

    clients: AwsClients
    credentials: Credentials
    region: str | None
    pool: str
    block: str | None = None  # "aws-credentials/NAME" when the pool names one

    def client(self, service: str) -> Any:
        with self.errors():
            return self.clients.client(service, self.credentials, region=self.region)

    @property
    def source(self) -> str:
        if self.credentials.from_block and self.block:
            return f"block {self.block} (aws_credentials of work pool {self.pool!r})"
        if self.credentials.from_block:
            return f"the aws-credentials block that work pool {self.pool!r} names in aws_credentials"
        return f"the default AWS credential chain of this machine (work pool {self.pool!r} names no block)"

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate botocore's exceptions (the cause is kept unless it could hold request values)."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self._client_error(exc) from exc
        except botocore.exceptions.ParamValidationError as exc:
            text = _PARAM_VALUE.sub("value: <redacted>, type:", str(exc))
            raise LaunchError(
                self._scrub(f"invalid ECS request for work pool {self.pool!r}: {text}")
            ) from None
        except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
            raise LaunchAuthError(
                f"no usable AWS credentials for work pool {self.pool!r} ({self.source})"
            ) from exc
        except botocore.exceptions.ProfileNotFound as exc:
            raise LaunchAuthError(f"work pool {self.pool!r}: {exc} ({self.source})") from exc
        except botocore.exceptions.NoRegionError:
            raise LaunchError(
                f"no AWS region for work pool {self.pool!r}: set region_name in its aws-credentials block "
                "or AWS_REGION where reconcile runs"
            ) from None
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            raise LaunchError(f"cannot reach AWS for work pool {self.pool!r}: {exc}", retryable=True) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise LaunchError(self._scrub(f"AWS client error for work pool {self.pool!r}: {exc}")) from exc

    def _client_error(self, exc: botocore.exceptions.ClientError) -> LaunchError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = self._scrub(str(error.get("Message", "")))
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        operation = exc.operation_name
        if code in _AUTH:
            return LaunchAuthError(
                f"AWS refused {operation} for work pool {self.pool!r} ({code}: {message}); "
                f"check {self.source}"
            )
        if code == "ClusterNotFoundException":
            return AwsCallError(
                f"ECS cluster not found for work pool {self.pool!r} in {self.region}: {message}", code=code
            )
        retryable = code in _THROTTLED or status >= 500 or status == 429
        retry_after = parse_retry_after(meta.get("HTTPHeaders")) if retryable else None
        return AwsCallError(
            f"AWS {operation} failed for work pool {self.pool!r}: {code}: {message}",
            code=code,
            retryable=retryable,
            retry_after=retry_after,
        )

    def _scrub(self, text: str) -> str:
        for value in self.credentials.secret_values:
            text = text.replace(value, "<redacted>")
        return text
