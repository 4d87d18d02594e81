"""An HTTP proxy in front of moto that injects the failures real CloudWatch produces and moto does not.

Faults apply to FilterLogEvents only (or to the `targets` given, e.g. Kinesis GetRecords), drawn per request
from a seeded RNG: ThrottlingException (ProvisionedThroughputExceededException for Kinesis), 5xx, connection
resets, slow answers, empty pages that still carry a nextToken (the proxy's own token, mapped back to the real
one on the next call), 200 answers cut short, ExpiredIteratorException, and ExpiredTokenException once an
access key has been used `expire_after` times. It also maps logGroupIdentifier (ARN) to logGroupName in
every CloudWatch Logs call, which moto lacks.

Visibility disorder (`hold_s`, `hold_tail_*`): CloudWatch can make a stream's older events searchable
after newer ones. The proxy keeps each PutLogEvents batch (the events of one stream with one
ingestionTime; or each event, with `hold_per_event`) out of FilterLogEvents answers until ingestionTime
plus a delay drawn for it from a seeded distribution: uniform in 0..`hold_s`, and for a share
`hold_tail_share` of the batches uniform in `hold_tail_s` instead.

Several accounts (moto picks a request's account from its access key id): STS AssumeRole of a role in
`deny_roles` is answered AccessDenied (a trust policy that does not let the caller in); the first
credentials STS hands out for a role in `expire_roles_once` answer ExpiredTokenException from their
`expire_role_after`-th FilterLogEvents call on (credentials that expire mid-run; the next AssumeRole gets
good ones). CloudWatch cross-account observability is modelled with `linked_keys` (account id → an access
key id of that account, e.g. from an AssumeRole into it): a Logs request whose logGroupIdentifier is an ARN
of a linked account is forwarded with that key in its Authorization header, so moto answers from the linked
account's data while the caller signed with its own (monitoring account) credentials. What is not modelled:
OAM sinks and links themselves (any account in linked_keys is linked), and the monitoring account's
permissions on the linked groups. moto cannot subscribe a log group to a CloudWatch Logs destination (a
cross-account subscription): the proxy answers such a PutSubscriptionFilter itself and records it with the
access key that made it (`destination_filters`; `issued` tells which role that key came from).

DynamoDB requests (the lease table) get their own switches: `dynamodb_cut` resets every connection (a
replica partitioned from DynamoDB), `dynamodb_throttle` / `dynamodb_server_error` answer a share of them
with ProvisionedThroughputExceededException / 500, `dynamodb_lose_answer` applies a share of them and
resets the connection instead of answering (the caller cannot tell whether its write happened).
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

_LOGS = "Logs_20140328."
FILTER = _LOGS + "FilterLogEvents"
DYNAMODB = "DynamoDB_20120810."
GET_RECORDS = "Kinesis_20131202.GetRecords"
GET_SHARD_ITERATOR = "Kinesis_20131202.GetShardIterator"
# The throttle answer of each service (Kinesis says it per shard).
_THROTTLE_CODE = {"Kinesis_20131202": "ProvisionedThroughputExceededException"}
_EMPTY_PREFIX = "faultproxy-empty:"
_STUCK_PREFIX = "faultproxy-stuck:"
_AKID = re.compile(r"Credential=([A-Z0-9]+)/")
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/")
_ISSUED_KEY = re.compile(rb"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>")
_ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]*:logs:[a-z0-9-]+:(\d{12}):log-group:")


@dataclass
class Faults:
    throttle: float = 0.0
    server_error: float = 0.0
    reset: float = 0.0
    slow: float = 0.0
    slow_s: float = 0.3
    empty_page: float = 0.0
    cut_200: float = 0.0
    deny: bool = False
    expire_after: int = 0  # > 0: every access key expires after this many FilterLogEvents calls
    seed: int = 1
    dynamodb_cut: bool = False
    dynamodb_throttle: float = 0.0
    dynamodb_server_error: float = 0.0
    dynamodb_lose_answer: float = 0.0  # the request reaches DynamoDB, the answer is lost (connection reset)
    targets: tuple[str, ...] = (FILTER,)  # X-Amz-Target values the faults apply to
    expired_iterator: float = 0.0  # Kinesis: ExpiredIteratorException (the iterator outlived 5 minutes)
    deny_targets: tuple[str, ...] = ()  # these targets always get AccessDeniedException
    # Kinesis GetShardIterator from a sequence number answers as for a record past the stream's retention:
    # InvalidArgumentException, or (stuck_sequences) an iterator whose GetRecords pages stay empty, a whole
    # retention (24 h) behind the newest record.
    trimmed_sequences: bool = False
    stuck_sequences: bool = False
    hold_s: float = 0.0
    hold_tail_share: float = 0.0
    hold_tail_s: tuple[float, float] = (0.0, 0.0)
    hold_per_event: bool = False
    deny_roles: tuple[str, ...] = ()  # STS AssumeRole of these role ARNs: AccessDenied
    expire_roles_once: tuple[str, ...] = ()  # the first credentials of these roles expire mid-run
    expire_role_after: int = 5  # ... after this many FilterLogEvents calls
    linked_keys: dict[str, str] = field(default_factory=dict)  # observability: account → its access key

    def holds(self) -> bool:
        return self.hold_s > 0 or self.hold_tail_share > 0

    def hold_ms(self, event: dict[str, Any]) -> float:
        """How long after its ingestion `event` stays out of FilterLogEvents answers (per batch or event)."""
        key = (
            event.get("eventId")
            if self.hold_per_event
            else (event.get("logStreamName"), event.get("ingestionTime"))
        )
        draw = random.Random(f"hold:{self.seed}:{key}")
        if draw.random() < self.hold_tail_share:
            return draw.uniform(*self.hold_tail_s) * 1000
        return draw.uniform(0, self.hold_s) * 1000


@dataclass
class Stats:
    requests: int = 0
    forwarded: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    filter_times: list[float] = field(default_factory=list)  # monotonic time of every call to a target
    bodies: list[dict[str, Any]] = field(default_factory=list)  # FilterLogEvents request bodies
    keys: dict[str, int] = field(default_factory=dict)  # access key id → FilterLogEvents calls
    dynamodb: dict[str, int] = field(default_factory=dict)  # DynamoDB operation → requests seen
    held: int = 0  # events left out of FilterLogEvents answers (visibility disorder), counted per answer
    assume_role: dict[str, int] = field(default_factory=dict)  # role ARN → AssumeRole requests seen
    linked: dict[str, int] = field(default_factory=dict)  # account → Logs requests sent as that account
    issued: dict[str, str] = field(default_factory=dict)  # access key id → the role AssumeRole gave it for
    destination_filters: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, request)

    def count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def max_per_second(self) -> int:
        times = sorted(self.filter_times)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def _by_name(request: dict[str, Any]) -> dict[str, Any]:
    """logGroupIdentifier (an ARN) → logGroupName: moto's FilterLogEvents lacks it, and its
    DescribeLogStreams resolves an ARN to whichever group it saw last."""
    if "logGroupIdentifier" in request:
        ident = request.pop("logGroupIdentifier")
        request["logGroupName"] = ident.split(":log-group:", 1)[-1] if ident.startswith("arn:") else ident
    return request


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a replica killed mid-request) is no error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    def __init__(self, upstream: str, faults: Faults | None = None) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.faults = faults or Faults()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._local = threading.local()
        self._expiring: set[str] = set()  # access key ids handed out by expire_roles_once
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm on, the client's delayed ACK
            # would add 40 ms to every answer, far more than AWS's own latency.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------

    def _draw(self, p: float) -> bool:
        with self._lock:
            return p > 0 and self._rng.random() < p

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        target = h.headers.get("X-Amz-Target", "")
        f = self.faults
        with self._lock:
            self.stats.requests += 1
        if target.startswith(DYNAMODB):
            self._dynamodb(h, body, target[len(DYNAMODB) :])
            return None
        if not target and b"Action=AssumeRole" in body:
            return self._assume_role(h, body)
        if f.trimmed_sequences and target == GET_SHARD_ITERATOR and b"StartingSequenceNumber" in body:
            return self._error(
                h,
                400,
                "InvalidArgumentException",
                "StartingSequenceNumber used in GetShardIterator is beyond the trim horizon of the shard",
            )
        if f.stuck_sequences and target == GET_SHARD_ITERATOR and b"StartingSequenceNumber" in body:
            page = {"ShardIterator": _STUCK_PREFIX + str(orjson.loads(body).get("ShardId"))}
            return self._raw(h, 200, orjson.dumps(page), "application/x-amz-json-1.1")
        if target == GET_RECORDS and _STUCK_PREFIX.encode() in body:
            iterator = orjson.loads(body)["ShardIterator"]
            page = {"Records": [], "NextShardIterator": iterator, "MillisBehindLatest": 86_400_000}
            return self._raw(h, 200, orjson.dumps(page), "application/x-amz-json-1.1", "stuck_page")
        if target in f.deny_targets:
            action = target.split(".")[-1]
            return self._error(h, 400, "AccessDeniedException", f"User is not authorized to perform {action}")
        if target == _LOGS + "PutSubscriptionFilter" and b":destination:" in body:
            m = _AKID.search(h.headers.get("Authorization", ""))
            with self._lock:
                self.stats.destination_filters.append((m.group(1) if m else "", orjson.loads(body)))
            return self._raw(h, 200, b"{}", "application/x-amz-json-1.1")
        if target not in f.targets:
            if target.startswith(_LOGS) and body:
                request = orjson.loads(body)
                as_key = self._linked_key(request)
                body = orjson.dumps(_by_name(request))
                self._forward(h, body, as_key=as_key)
                return None
            self._forward(h, body)
            return None
        request = orjson.loads(body or b"{}")
        m = _AKID.search(h.headers.get("Authorization", ""))
        akid = m.group(1) if m else ""
        as_key = self._linked_key(request)
        with self._lock:
            self.stats.filter_times.append(time.monotonic())
            self.stats.bodies.append(dict(request))
            used = self.stats.keys[akid] = self.stats.keys.get(akid, 0) + 1
        if f.deny:
            return self._error(
                h, 400, "AccessDeniedException", "User is not authorized to perform: logs:FilterLogEvents"
            )
        if (f.expire_after and used > f.expire_after) or (
            akid in self._expiring and used > f.expire_role_after
        ):
            return self._error(
                h, 400, "ExpiredTokenException", "The security token included in the request is expired"
            )
        if self._draw(f.reset):
            self.stats.count("reset")
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return None
        if self._draw(f.throttle):
            code = _THROTTLE_CODE.get(target.split(".")[0], "ThrottlingException")
            return self._error(h, 400, code, "Rate exceeded")
        if self._draw(f.expired_iterator):
            return self._error(h, 400, "ExpiredIteratorException", "Iterator expired")
        if self._draw(f.server_error):
            if self._draw(0.5):
                return self._error(h, 503, "ServiceUnavailableException", "injected")
            return self._raw(h, 502, b"<html>Bad Gateway</html>", "text/html", "502")
        if self._draw(f.slow):
            self.stats.count("slow")
            time.sleep(f.slow_s)
        token = request.get("nextToken")
        if isinstance(token, str) and token.startswith(_EMPTY_PREFIX):
            real = token[len(_EMPTY_PREFIX) :]
            if real:
                request["nextToken"] = real
            else:
                del request["nextToken"]
        if self._draw(f.empty_page):
            self.stats.count("empty_page")
            page = {
                "events": [],
                "searchedLogStreams": [],
                "nextToken": _EMPTY_PREFIX + (request.get("nextToken") or ""),
            }
            return self._raw(h, 200, orjson.dumps(page), "application/x-amz-json-1.1")
        request = _by_name(request)
        cut = self._draw(f.cut_200)
        self._forward(h, orjson.dumps(request), cut=cut, hold=target == FILTER and f.holds(), as_key=as_key)
        return None

    def _linked_key(self, request: dict[str, Any]) -> str:
        """The access key of the linked account whose log group `request` names by ARN; "" if none."""
        ident = request.get("logGroupIdentifier")
        m = _ARN_ACCOUNT.match(ident) if isinstance(ident, str) else None
        if m is None or m.group(1) not in self.faults.linked_keys:
            return ""
        account = m.group(1)
        with self._lock:
            self.stats.linked[account] = self.stats.linked.get(account, 0) + 1
        return self.faults.linked_keys[account]

    def _assume_role(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        form = urllib.parse.parse_qs(body.decode())
        role = form.get("RoleArn", [""])[0]
        with self._lock:
            first = role not in self.stats.assume_role
            self.stats.assume_role[role] = self.stats.assume_role.get(role, 0) + 1
        if role in self.faults.deny_roles:
            self.stats.count("AssumeRoleDenied")
            xml = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole on "
                f"resource: {role}</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>"
            )
            return self._raw(h, 403, xml.encode(), "text/xml")
        answer = self._forward(h, body)
        m = _ISSUED_KEY.search(answer or b"")
        if m:
            with self._lock:
                self.stats.issued[m.group(1).decode()] = role
                if first and role in self.faults.expire_roles_once:
                    self._expiring.add(m.group(1).decode())
        return None

    def _dynamodb(self, h: BaseHTTPRequestHandler, body: bytes, operation: str) -> None:
        f = self.faults
        with self._lock:
            self.stats.dynamodb[operation] = self.stats.dynamodb.get(operation, 0) + 1
        if f.dynamodb_cut:
            self.stats.count("dynamodb_cut")
            self._reset(h)
            return
        if self._draw(f.dynamodb_throttle):
            code = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            return self._error(h, 400, code, "Rate of requests exceeds the allowed throughput")
        if self._draw(f.dynamodb_server_error):
            return self._error(h, 500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "injected")
        lose = self._draw(f.dynamodb_lose_answer)
        if lose:
            self.stats.count("dynamodb_lost_answer")
        self._forward(h, body, drop_answer=lose)
        return None

    @staticmethod
    def _reset(h: BaseHTTPRequestHandler) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        self.stats.count(code)
        body = orjson.dumps({"__type": code, "message": message})
        self._raw(h, status, body, "application/x-amz-json-1.1")

    def _raw(self, h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, kind: str = "") -> None:
        if kind:
            self.stats.count(kind)
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("x-amzn-RequestId", "faultproxy")
        h.end_headers()
        h.wfile.write(body)

    def _hide_held(self, data: bytes) -> bytes:
        """A FilterLogEvents answer without the events that are not searchable yet."""
        page = orjson.loads(data)
        now_ms = time.time() * 1000
        events = page.get("events", [])
        shown = [e for e in events if e.get("ingestionTime", 0) + self.faults.hold_ms(e) <= now_ms]
        if len(shown) == len(events):
            return data
        with self._lock:
            self.stats.held += len(events) - len(shown)
        page["events"] = shown
        return orjson.dumps(page)

    def _upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        return conn

    def _forward(
        self,
        h: BaseHTTPRequestHandler,
        body: bytes,
        cut: bool = False,
        drop_answer: bool = False,
        hold: bool = False,
        as_key: str = "",
    ) -> bytes:
        """Forward the request (as access key `as_key` when given); the upstream answer's body."""
        headers = {
            k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length", "connection")
        }
        if as_key and "Authorization" in headers:
            headers["Authorization"] = _CREDENTIAL.sub(
                f"Credential={as_key}/", headers["Authorization"], count=1
            )
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):
            conn = self._upstream()
            try:
                conn.request(h.command, h.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        with self._lock:
            self.stats.forwarded += 1
        if drop_answer:
            self._reset(h)
            return data
        if hold and resp.status == 200:
            data = self._hide_held(data)
        if cut and resp.status == 200 and len(data) > 2:
            self.stats.count("cut_200")
            data = data[: len(data) // 2]
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        return data
