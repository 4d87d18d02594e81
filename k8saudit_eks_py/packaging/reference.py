"""Parse `registry/repository[:tag]`; the registry is the first component, with a `.` or `:` or localhost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # path inside the registry, e.g. myorg/plugin/k8saudit-eks-py
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "")


def parse_reference(text: str) -> Reference:
    if "@" in text:
        raise ValueError(f"{text!r}: give a tag or no tag, not a digest, to push to")
    host, sep, rest = text.partition("/")
    if not sep or not rest or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(
            f"{text!r} is not REGISTRY/REPOSITORY[:TAG] (e.g. ghcr.io/me/plugin/k8saudit-eks-py)"
        )
    repository, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = rest.rsplit(":", 1)
    if repository != repository.lower():
        raise ValueError(f"{text!r}: repository names are lower case")
    return Reference(host, repository, tag)
