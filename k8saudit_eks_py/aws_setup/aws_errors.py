"""Reading an AWS error answer: its code and message, also when botocore could not parse the body.

Some endpoints (moto, proxies) answer a JSON-protocol call with an XML error body: botocore then reports
the HTTP status as the code and the whole body as the message, so the real <Code>/<Message> are inside.
"""

from __future__ import annotations

import re

import botocore.exceptions

from k8saudit_eks_py.aws import classify, describe

__all__ = ["BAD_CREDENTIALS", "DENIED", "error_code", "error_kind", "error_message", "error_text"]

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
}
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _inner(message: str) -> tuple[str, str] | None:
    """(code, message) of an XML error body inside `message`, or None when there is none."""
    code = _XML_CODE.search(message)
    if not code:
        return None
    text = _XML_MESSAGE.search(message)
    return code.group(1), text.group(1) if text else ""


def _error(exc: BaseException) -> tuple[str, str]:
    """(code, message) of an AWS error, the message starting with the code."""
    if not isinstance(exc, botocore.exceptions.ClientError):
        return "", f"{type(exc).__name__}: {exc}"
    err = exc.response.get("Error", {})
    code, message = str(err.get("Code", "")), str(err.get("Message", ""))
    inner = _inner(message)
    if inner:
        code, message = inner
    if code.isdigit() and int(code) == 403 and not inner:
        code = "AccessDenied"
    return code, f"{code}: {message}" if message else code


def error_code(exc: BaseException) -> str:
    return _error(exc)[0]


def error_message(exc: BaseException) -> str:
    return _error(exc)[1]


def error_kind(exc: BaseException) -> str:
    """aws.classify(), also reading a 403 with an XML body (some endpoints, moto among them, answer
    DynamoDB's JSON protocol that way) as access denied."""
    if (
        isinstance(exc, botocore.exceptions.ClientError)
        and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403
    ):
        return "denied"
    return classify(exc)


def error_text(exc: BaseException) -> str:
    """aws.describe(), with the real code and message of an XML error body."""
    if isinstance(exc, botocore.exceptions.ClientError):
        inner = _inner(str(exc.response.get("Error", {}).get("Message", "")))
        if inner:
            return f"{inner[0]}: {inner[1]}".rstrip(": ")
    return describe(exc)
