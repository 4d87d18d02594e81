"""What of the copied distributions the runtime keeps: botocore's data/ only for the services we call."""

from __future__ import annotations

from pathlib import PurePosixPath

# Service models botocore needs: logs (the source), eks (cluster lookups), sts (web-identity / assume-role
# credentials, IRSA), and the ones its credential and token providers create clients for (sso, sso-oidc for
# IAM Identity Center profiles; signin for `aws login` profiles). Container (EKS Pod Identity) and IMDS
# credentials are plain HTTP and need no model.
SERVICES = ("logs", "eks", "sts", "sso", "sso-oidc", "signin")

_DROPPED_SUFFIXES = (".pyi",)


def keep(path: PurePosixPath) -> bool:
    parts = path.parts
    if path.suffix in _DROPPED_SUFFIXES:
        return False
    if parts[:2] == ("botocore", "data") and len(parts) > 3:
        # botocore/data/<file> (endpoints.json, partitions.json, _retry.json, sdk-default-configuration.json)
        # are loaded at session start: kept. botocore/data/<service>/<api-version>/... only for SERVICES.
        return parts[2] in SERVICES
    # boto3's resource models and docs examples: we use clients only.
    return parts[:2] not in (("boto3", "data"), ("boto3", "examples"))
