"""boto3 session/client construction, API call pacing, and AWS errors → retry classes and user-facing fixes.

With cloudwatch.py, the only module that imports boto3/botocore.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from k8saudit_eks_py import __version__
from k8saudit_eks_py.account_roles import is_template
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError

# botocore reports a role session it could not refresh as a warning with a traceback (on Falco's stderr,
# through Python's last-resort handler) each time; the sources report it themselves, rate-limited per
# account, with the fix.
logging.getLogger("botocore.credentials").setLevel(logging.ERROR)

__all__ = [
    "QUOTAS",
    "CallPacer",
    "Cancelled",
    "ErrorClass",
    "classify",
    "describe",
    "is_aws_error",
    "make_client",
    "make_logs_client",
    "open_failure",
    "own_role",
    "resolve_region",
    "role_failure",
]

ErrorClass = Literal[
    "throttle", "server", "network", "credentials", "denied", "not_found", "invalid", "other"
]

_THROTTLE_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
}
# Credentials that were good and went stale (expired session, rotated key): rebuild the session and retry.
_CREDENTIAL_CODES = {
    "ExpiredTokenException",
    "ExpiredToken",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
_SERVER_CODES = {"ServiceUnavailableException", "ServiceUnavailable", "InternalFailure", "InternalError"}


class Cancelled(Exception):
    """The source is closing: raised out of a paced call so the poller thread can exit at once."""


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def is_aws_error(exc: BaseException) -> bool:
    """Raised by botocore or the network below it (as opposed to a bug in our code)."""
    return isinstance(exc, (ClientError, BotoCoreError, ConnectionError, TimeoutError))


def classify(exc: BaseException) -> ErrorClass:
    """Which retry policy an exception from a CloudWatch call gets."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLE_CODES or status == 429:
            return "throttle"
        if code in _CREDENTIAL_CODES:
            return "credentials"
        if code in _DENIED_CODES:
            return "denied"
        if code == "ResourceNotFoundException":
            return "not_found"
        if code in _SERVER_CODES or status >= 500:
            return "server"
        if code in ("InvalidParameterException", "ValidationException"):
            return "invalid"
        return "other"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return "credentials"
    if isinstance(
        exc,
        (
            EndpointConnectionError,
            ConnectionClosedError,
            ReadTimeoutError,
            ConnectTimeoutError,
            HTTPClientError,
            ConnectionError,
            TimeoutError,
        ),
    ):
        return "network"
    if isinstance(exc, (ParamValidationError, NoRegionError)):
        return "invalid"
    return "other"


def describe(exc: BaseException) -> str:
    """One line naming the cause, never credentials."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{err.get('Code', 'error')} (HTTP {status}): {err.get('Message', '')}".rstrip(": ")
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def resolve_region(cfg: PluginConfig) -> str:
    """The region from init_config / AWS_REGION / the profile; OpenError saying where to set it."""
    try:
        region = boto3.Session(profile_name=cfg.profile or None, region_name=cfg.region or None).region_name
    except BotoCoreError as exc:  # e.g. ProfileNotFound
        raise OpenError(f"AWS profile problem: {exc}; fix 'profile' in init_config or AWS_PROFILE") from None
    if not region:
        raise OpenError(
            "no AWS region: set region in init_config (e.g. region: us-east-1) or AWS_REGION "
            "in Falco's environment"
        )
    return region


def own_role(cfg: PluginConfig) -> str:
    """The role this plugin's own calls assume: role_arn, unless it is a per-account template (then the
    plugin's own calls, e.g. to the lease table or the stream, use the default credentials)."""
    return "" if is_template(cfg.role_arn) else cfg.role_arn


def role_failure(exc: BaseException) -> bool:
    """The failure is STS refusing (or failing) to hand out the role's credentials, not the call itself."""
    if isinstance(exc, ClientError):
        return exc.operation_name == "AssumeRole"
    return isinstance(exc, CredentialRetrievalError)


def _session(cfg: PluginConfig, region: str, role_arn: str | None = None) -> boto3.Session:
    """Default credential chain (env, profile/SSO, IRSA web identity, EKS Pod Identity, IMDS), optionally
    exchanged for a role (`role_arn`, default: own_role) through STS with credentials that refresh
    themselves before they expire (botocore refreshes them 15 minutes ahead)."""
    role = own_role(cfg) if role_arn is None else role_arn
    base = boto3.Session(profile_name=cfg.profile or None, region_name=region)
    if not role:
        return base
    source = base.get_credentials()
    if source is None:
        raise NoCredentialsError()
    extra: dict[str, Any] = {"RoleSessionName": cfg.role_session_name or "k8saudit-eks-py"}
    if cfg.external_id:
        extra["ExternalId"] = cfg.external_id
    fetcher = AssumeRoleCredentialFetcher(
        # boto3 exposes no public handle on its botocore session; this is the documented-by-use recipe.
        client_creator=base._session.create_client,
        source_credentials=source,
        role_arn=role,
        extra_args=extra,
    )
    assumed = botocore.session.Session()
    # botocore has no public setter for refreshable credentials: the usual way is this attribute.
    assumed._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    return boto3.Session(botocore_session=assumed, region_name=region)


def make_client(
    service: str,
    cfg: PluginConfig,
    region: str,
    *,
    endpoint_url: str = "",
    pacer: CallPacer | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    role_arn: str | None = None,
) -> Any:
    """A fresh client of `service` (logs, dynamodb, kinesis) with the plugin's credentials (a fresh
    session too, so stale credentials are re-resolved). An empty endpoint_url leaves boto3's own endpoint
    resolution alone, so AWS_ENDPOINT_URL_<SERVICE> and the shared config's `services` keep working.

    botocore's own retries are off: the sources retry every failure themselves, with jitter and a sleep
    that close() can cut short, and resume where they were."""
    config = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=2,
        tcp_keepalive=True,
        user_agent_extra=f"k8saudit-eks-py/{__version__}",
    )
    client = _session(cfg, region, role_arn).client(service, endpoint_url=endpoint_url or None, config=config)
    if pacer is not None:
        # Every HTTP attempt goes through the pacer, so the cap holds whatever retries happen above.
        client.meta.events.register(
            f"before-send.{client.meta.service_model.service_id.hyphenize()}", pacer.before_send
        )
    return client


def make_logs_client(
    cfg: PluginConfig,
    region: str,
    pacer: CallPacer | None,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    role_arn: str | None = None,
) -> Any:
    """The CloudWatch Logs client (endpoint: init_config endpoint_url, else boto3's resolution), with
    `role_arn`'s credentials (None: own_role)."""
    return make_client(
        "logs",
        cfg,
        region,
        endpoint_url=cfg.endpoint_url,
        pacer=pacer,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        role_arn=role_arn,
    )


# Request quotas per account and Region (calls/s), each operation its own. `max_api_calls_per_second` is
# the cap of a 5/s operation; an operation with another quota gets the same share of it.
QUOTAS: dict[str, float] = {"FilterLogEvents": 5.0, "DescribeLogStreams": 5.0, "GetLogEvents": 25.0}
_BASE_QUOTA = 5.0


class CallPacer:
    """One token bucket of capacity 1 per operation: consecutive calls of an operation are at least
    1/its rate apart. The quotas are per operation and shared by the whole account and Region, so a burst
    would only buy throttling, and one operation's calls must not spend another's budget.

    `rate` is the cap of an operation whose quota is 5/s (FilterLogEvents, DescribeLogStreams); others
    get the same fraction of theirs (rate 2 = 40%: GetLogEvents would get 10/s).

    A throttled answer means someone else in the account spends the same quota: the operation's rate is
    halved (down to a fifth of the cap) and grows back with time, the whole cap within `RECOVERY_S` of the
    last throttle, as botocore's adaptive retry mode regrows its client-side rate with time, not with
    calls: a storm of throttles slows the reads while it lasts and costs at most `RECOVERY_S` after it.
    Callers retry a throttled call at its next slot instead of backing off on their own."""

    MIN_SHARE = 0.2  # the lowest fraction of the cap a throttled operation is slowed to
    RECOVERY_S = 5.0  # seconds to grow back from no rate to the whole cap

    def __init__(
        self,
        rate: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self._stop = stop
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        # operation → (fraction of its cap right after its last throttle, clock time of that throttle)
        self._slowed: dict[str, tuple[float, float]] = {}
        self.calls = 0
        self.calls_by_operation: dict[str, int] = {}  # e.g. "FilterLogEvents" → requests sent

    def _cap(self, operation: str) -> float:
        return self.rate * QUOTAS.get(operation, _BASE_QUOTA) / _BASE_QUOTA

    def _share_at(self, operation: str, now: float) -> float:
        slowed = self._slowed.get(operation)
        if slowed is None:
            return 1.0
        share = slowed[0] + (now - slowed[1]) / self.RECOVERY_S
        if share >= 1.0:
            del self._slowed[operation]
            return 1.0
        return share

    def rate_of(self, operation: str) -> float:
        with self._lock:
            return self._cap(operation) * self._share_at(operation, self._clock())

    def throttled(self, operation: str) -> None:
        with self._lock:
            now = self._clock()
            share = max(self.MIN_SHARE, self._share_at(operation, now) / 2)
            self._slowed[operation] = (share, now)
            # the next slot is one (now longer) interval after the throttled call
            self._next[operation] = max(
                self._next.get(operation, 0.0), now + 1.0 / (self._cap(operation) * share)
            )

    def share(self, operation: str) -> float:
        """The fraction of the cap `operation` runs at now (1.0 unless throttled lately)."""
        with self._lock:
            return self._share_at(operation, self._clock())

    def free_at(self, operation: str) -> float:
        """The clock time from which a call of `operation` goes out without waiting."""
        with self._lock:
            return self._next.get(operation, 0.0)

    def acquire(self, operation: str = "") -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(operation, 0.0))
            self._next[operation] = slot + 1.0 / (self._cap(operation) * self._share_at(operation, slot))
        delay = slot - now
        if self._stop.is_set() or (delay > 0 and self._stop.wait(delay)):
            raise Cancelled()
        self.calls += 1  # counted when sent; only the poller thread sends

    def before_send(self, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]  # before-send.<service>.<Operation>
        self.acquire(operation)  # returning None lets botocore send the request
        self.calls_by_operation[operation] = self.calls_by_operation.get(operation, 0) + 1


_POLICY = """{{
  "Version": "2012-10-17",
  "Statement": [{{
    "Effect": "Allow",
    "Action": ["logs:FilterLogEvents", "logs:DescribeLogStreams", "logs:DescribeLogGroups"],
    "Resource": "arn:aws:logs:{region}:*:log-group:{group}:*"
  }}]
}}"""


def open_failure(exc: BaseException, *, cluster: str, region: str, log_group: str) -> str | None:
    """The user-facing text for a configuration error found at open, or None when the error is transient
    (throttling, 5xx, network) and the source should start anyway and keep retrying."""
    kind = classify(exc)
    cause = describe(exc)
    if kind == "not_found":
        return (
            f"log group {log_group} not found in region {region} ({cause}). Is audit logging enabled for "
            f"cluster {cluster} in region {region}? Enable it with: aws eks update-cluster-config "
            f"--name {cluster} --region {region} "
            '--logging \'{"clusterLogging":[{"types":["audit"],"enabled":true}]}\' '
            "(or set log_group / region in init_config if the logs are elsewhere)"
        )
    if kind == "denied":
        name = log_group if not log_group.startswith("arn:") else "*"
        return (
            f"access denied reading {log_group} ({cause}). The IAM identity Falco runs as needs "
            "logs:FilterLogEvents and logs:DescribeLogStreams on the log group. Attach this policy:\n"
            + _POLICY.format(region=region, group=name)
        )
    if kind == "credentials":
        return (
            f"no usable AWS credentials ({cause}). Provide them through the default chain: IRSA or EKS Pod "
            "Identity on the Falco pod, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile "
            "('profile' in init_config); set role_arn to assume a role"
        )
    if kind == "invalid":
        return (
            f"CloudWatch Logs rejected the request for {log_group} ({cause}): "
            "check filter_pattern and log_group"
        )
    return None
