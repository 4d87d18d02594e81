"""What every `check` shares: the statuses and result rows it prints, the options of a run, and the
context (session, region, account, principal) each check reads and adds its row to."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

__all__ = [
    "CLIENT_CONFIG",
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "CheckContext",
    "CheckResult",
    "Options",
    "shell_command",
]

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # PASS | FAIL | WARN | SKIP
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Options:
    cluster: str
    region: str = ""
    profile: str = ""
    role_arn: str = ""
    external_id: str = ""  # passed when assuming role_arn
    endpoint_url: str = ""
    log_group: str = ""
    window_seconds: int = 3600  # how far back "recent audit events" looks
    max_pages: int = 20  # FilterLogEvents pages read at most while looking for them
    coordination_table: str = ""  # checked (exists, key schema, IAM actions) when set
    coordination_endpoint_url: str = ""
    log_groups: int = 1  # clusters one Falco reads in poll mode (the capacity check)
    polling_interval: float = 5.0
    max_api_calls_per_second: float = 2.0
    lookback: int = 600  # poll mode: how late (s) an event may become visible and still be delivered


@dataclass
class CheckContext:
    options: Options
    session: Any = None
    region: str = ""
    account: str = ""
    principal: str = ""
    log_group: str = ""
    results: list[CheckResult] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str = "", fix: str = "") -> CheckResult:
        result = CheckResult(name, status, detail, fix)
        self.results.append(result)
        return result

    def client(self, service: str) -> Any:
        """CloudWatch calls go to endpoint_url when given (as in the plugin); STS and EKS use boto3's
        normal endpoint resolution (AWS_ENDPOINT_URL_STS, _EKS, AWS_ENDPOINT_URL)."""
        kwargs: dict[str, Any] = {"config": CLIENT_CONFIG}
        if service == "logs" and self.options.endpoint_url:
            kwargs["endpoint_url"] = self.options.endpoint_url
        return self.session.client(service, **kwargs)


def shell_command(*argv: str) -> str:
    """A command line to paste into a shell: every argument quoted as needed."""
    return shlex.join(argv)
