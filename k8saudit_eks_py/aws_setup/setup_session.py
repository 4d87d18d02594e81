"""What the set-up commands (`setup-stream`, `setup-archive`) share before their first change: the boto3
session of --profile/--region, its Region, clients that retry a little and reach --endpoint-url, and the
account they act in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

__all__ = ["CLIENT_CONFIG", "SetupError", "SetupSession", "open_setup_session"]

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"})


class SetupError(Exception):
    """A set-up command cannot go on; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class SetupSession:
    session: Any
    region: str
    endpoint_url: str

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url or None, config=CLIENT_CONFIG)


def open_setup_session(
    profile: str, region: str, endpoint_url: str, session_factory: Callable[..., Any] = boto3.Session
) -> SetupSession:
    """SetupError when the profile does not exist or no Region is known."""
    try:
        session = session_factory(profile_name=profile or None, region_name=region or None)
    except botocore.exceptions.ProfileNotFound as exc:
        raise SetupError(f"{exc}: pass an existing --profile") from None
    if not session.region_name:
        raise SetupError("no AWS region: pass --region REGION or set AWS_REGION")
    return SetupSession(session, str(session.region_name), endpoint_url)
