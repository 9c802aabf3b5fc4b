#!/usr/bin/env python3
"""lbgp's AWS API emulator: moto in server mode, with fidelity patches and fault injection.

Usage::

    python tests/emulator/lbgp_emulator.py [--port 0] [--host 127.0.0.1] [--plain]
                                           [--ignore-stdin] [--verbose]

The process binds the port itself (``--port 0``: the OS picks a free one, so
there is no race between choosing and binding), then prints exactly one line::

    LBGP_EMULATOR_LISTENING port=<N>

on stdout and flushes it. Point the AWS SDKs at ``http://127.0.0.1:<N>`` with
``AWS_ENDPOINT_URL``; any region works, moto keeps one backend per region (taken
from the SigV4 credential scope of each request).

It exits by itself when its stdin reaches EOF (so an emulator started by a test
harness that died is never orphaned; pass ``--ignore-stdin`` to run it by hand
in the background), and on SIGTERM / SIGINT.

``--plain`` serves moto without the fidelity patches of the ``fidelity``
package (the fault-injection and call-counting middleware is always there).

Control endpoints, all under ``/_lbgp/`` (the SDKs never call those paths):

* ``POST /_lbgp/faults``         set fault injection (JSON, see ``FaultConfig``)
* ``DELETE /_lbgp/faults``       clear it (so does ``POST`` with ``{}``)
* ``GET /_lbgp/faults``          the configuration in force
* ``GET /_lbgp/calls``           counts per service and action
* ``GET /_lbgp/calls?detail=1``  the calls in order, with their outcome and answer time
* ``POST /_lbgp/calls/reset``    zero the counts
* ``POST /_lbgp/fidelity``       set the fidelity layer's settings (JSON, see
                                 ``fidelity/settings.py``; replaces them all)
* ``DELETE /_lbgp/fidelity``     back to the defaults
* ``GET /_lbgp/fidelity``        the settings in force
* ``POST /_lbgp/reset``          reset moto's state, the counts, the faults and
                                 the fidelity settings
* ``GET /_lbgp/health``          ``ok``

See README.md beside this file for the semantics.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from ddb_conflicts import ITEM_WRITES, _key_attributes, conflict_response, item_keys

LISTENING_LINE = "LBGP_EMULATOR_LISTENING port={port}"
CONTROL_PREFIX = "/_lbgp/"

# How many detailed call records are kept (oldest dropped first).
MAX_CALL_DETAIL = 100_000


# --------------------------------------------------------------------------- #
# Startup speed
# --------------------------------------------------------------------------- #
def _speed_up_startup() -> None:
    """Cut moto's import time without changing its behaviour towards lbgp.

    * moto asks a *new* ``boto3.Session()`` for the available regions of a
      service a few dozen times while its EC2 modules are imported and each
      backend is built; each new session loads and parses botocore's (large)
      EC2 model again. The answer only depends on the arguments, so it is
      memoised here, and computed with one shared botocore session.
    * Every EC2 region backend loads ~1,000 sample AMIs from JSON when first
      used (~0.5 s per region). lbgp never looks AMIs up and moto does not
      validate image ids by default, so this is off unless the caller set
      ``MOTO_EC2_LOAD_DEFAULT_AMIS`` or ``MOTO_AMIS_PATH`` himself.
    """
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

    import botocore.session

    original = botocore.session.Session.get_available_regions
    if getattr(original, "_lbgp_memoised", False):
        return
    cache: dict[tuple[Any, ...], list[str]] = {}
    lock = threading.Lock()
    shared: list[Any] = []  # one session, so that each model is parsed once

    def get_available_regions(
        self: Any,
        service_name: str,
        partition_name: str = "aws",
        allow_non_regional: bool = False,
    ) -> list[str]:
        key = (service_name, partition_name, allow_non_regional)
        with lock:
            if key not in cache:
                if not shared:
                    shared.append(botocore.session.Session())
                cache[key] = original(
                    shared[0], service_name, partition_name, allow_non_regional
                )
            return list(cache[key])

    get_available_regions._lbgp_memoised = True  # type: ignore[attr-defined]
    botocore.session.Session.get_available_regions = get_available_regions  # type: ignore[method-assign]


# --------------------------------------------------------------------------- #
# Request classification
# --------------------------------------------------------------------------- #
_CREDENTIAL_RE = re.compile(
    r"Credential=(?P<akid>[^/,\s]+)/(?P<date>[^/,\s]+)/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request"
)

EC2_MUTATING_PREFIXES = (
    "Create",
    "Delete",
    "Replace",
    "Modify",
    "Associate",
    "Disassociate",
    "Enable",
    "Disable",
    "Accept",
    "Reject",
    "Run",
    "Terminate",
    "Stop",
    "Start",
)
DYNAMODB_MUTATING = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
)
# SNS: only publishing counts as a write (topics and subscriptions are set up
# once, as in tests/src/emulator.rs's is_mutating).
SNS_MUTATING = frozenset({"Publish", "PublishBatch"})
GENERIC_MUTATING_PREFIXES = EC2_MUTATING_PREFIXES + (
    "Put",
    "Update",
    "Publish",
    "Send",
    "Set",
    "Tag",
    "Untag",
)


def is_mutating(service: str, action: str) -> bool:
    """Whether ``action`` of ``service`` changes state (lost responses and
    ``fail_writes_after`` only concern these)."""
    if service == "ec2":
        return action.startswith(EC2_MUTATING_PREFIXES)
    if service == "dynamodb":
        return action in DYNAMODB_MUTATING
    if service == "sns":
        return action in SNS_MUTATING
    return action.startswith(GENERIC_MUTATING_PREFIXES)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put an equivalent stream back in
    ``wsgi.input``, so that moto still sees the whole body."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_text) if length_text else -1
    except ValueError:
        length = -1
    if length >= 0:
        body = stream.read(length) if length else b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    if length < 0 and body:
        # A chunked request: give moto (werkzeug) a plain, sized body.
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


_RPC_V2_PATH_RE = re.compile(r"^/service/[^/]+/operation/(?P<operation>[A-Za-z0-9]+)$")


def classify(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(service, action, region) of a signed AWS request, or None."""
    match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    service = match.group("service").lower()
    region = match.group("region")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    action = ""
    rpc_v2 = _RPC_V2_PATH_RE.match(environ.get("PATH_INFO", ""))
    if target:
        action = target.rsplit(".", 1)[-1]
    elif rpc_v2:
        # Smithy RPC v2 CBOR (CloudWatch from aws-sdk-rust): the operation
        # is the path's last segment.
        action = rpc_v2.group("operation")
    else:
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = _read_body(environ)
            form = parse_qs(body.decode("utf-8", "replace"))
            action = (form.get("Action") or [""])[0]
        if not action:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            action = (query.get("Action") or [""])[0]
        if not action:
            action = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"
    return service, action, region


# --------------------------------------------------------------------------- #
# Error bodies, in each protocol's real format
# --------------------------------------------------------------------------- #
ERROR_KINDS = ("throttled", "5xx", "lost", "writes_failed")


def error_response(service: str, kind: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer of ``service`` for an injected fault of ``kind``.

    * ``throttled``: EC2 ``RequestLimitExceeded`` (HTTP 503, as real EC2 sends
      it), DynamoDB ``ThrottlingException`` (400), SNS and query services
      ``Throttling`` (400). All three codes are in aws-sdk-rust's
      ``THROTTLING_ERRORS`` (aws-runtime ``retries::classifiers``).
    * ``5xx``: EC2 ``Unavailable`` (503), DynamoDB ``InternalServerError``
      (500), others ``InternalError`` (500) - transient by status code.
    * ``lost`` / ``writes_failed``: ``InternalError`` (500), DynamoDB
      ``InternalServerError`` (500).
    """
    request_id = str(uuid.uuid4())
    if kind == "throttled":
        table = {
            "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
            "dynamodb": (400, "ThrottlingException", "Rate exceeded"),
        }
        status, code, message = table.get(service, (400, "Throttling", "Rate exceeded"))
    elif kind == "5xx":
        table = {
            "ec2": (503, "Unavailable", "The server is overloaded and can't handle the request."),
            "dynamodb": (500, "InternalServerError", "Internal server error"),
        }
        status, code, message = table.get(
            service, (500, "InternalError", "An internal error has occurred.")
        )
    else:
        if service == "dynamodb":
            status, code, message = 500, "InternalServerError", "Internal server error"
        else:
            status, code, message = 500, "InternalError", "An internal error has occurred."

    if service == "dynamodb" or service.startswith("dynamodb"):
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
        ).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
        ]
    elif service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    else:  # awsQuery (SNS, ...)
        fault = "Sender" if status < 500 else "Receiver"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


# --------------------------------------------------------------------------- #
# Fault configuration and state
# --------------------------------------------------------------------------- #
class FaultConfigError(ValueError):
    pass


class FaultConfig:
    """Parsed body of ``POST /_lbgp/faults`` (every field optional)."""

    FIELDS = {
        "seed",
        "throttle_p",
        "error5xx_p",
        "lost_response_p",
        "latency_ms",
        "write_latency_ms",
        "services",
        "mutating_only",
        "fail_writes_after",
    }

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        raw = dict(raw or {})
        unknown = set(raw) - self.FIELDS
        if unknown:
            raise FaultConfigError(f"unknown fields: {sorted(unknown)}")
        self.seed = raw.get("seed")
        self.throttle_p = self._probability(raw, "throttle_p")
        self.error5xx_p = self._probability(raw, "error5xx_p")
        self.lost_response_p = self._probability(raw, "lost_response_p")
        if self.throttle_p + self.error5xx_p + self.lost_response_p > 1.0 + 1e-9:
            raise FaultConfigError("throttle_p + error5xx_p + lost_response_p > 1")
        latency = raw.get("latency_ms") or 0
        if not isinstance(latency, (int, float)) or latency < 0:
            raise FaultConfigError("latency_ms must be a number >= 0")
        self.latency_ms = float(latency)
        write_latency = raw.get("write_latency_ms") or 0
        if not isinstance(write_latency, (int, float)) or write_latency < 0:
            raise FaultConfigError("write_latency_ms must be a number >= 0")
        self.write_latency_ms = float(write_latency)
        services = raw.get("services")
        if services is not None and (
            not isinstance(services, list)
            or not all(isinstance(s, str) for s in services)
        ):
            raise FaultConfigError("services must be a list of strings")
        self.services = None if services is None else {s.lower() for s in services}
        self.mutating_only = bool(raw.get("mutating_only", False))
        fwa = raw.get("fail_writes_after")
        if fwa is not None and (not isinstance(fwa, int) or isinstance(fwa, bool) or fwa < 0):
            raise FaultConfigError("fail_writes_after must be null or an integer >= 0")
        self.fail_writes_after = fwa

    @staticmethod
    def _probability(raw: dict[str, Any], name: str) -> float:
        value = raw.get(name) or 0.0
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise FaultConfigError(f"{name} must be a number in [0, 1]")
        return float(value)

    def applies_to(self, service: str) -> bool:
        return self.services is None or service in self.services

    @property
    def active(self) -> bool:
        return bool(
            self.throttle_p
            or self.error5xx_p
            or self.lost_response_p
            or self.latency_ms
            or self.write_latency_ms
            or self.fail_writes_after is not None
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "throttle_p": self.throttle_p,
            "error5xx_p": self.error5xx_p,
            "lost_response_p": self.lost_response_p,
            "latency_ms": self.latency_ms,
            "write_latency_ms": self.write_latency_ms,
            "services": None if self.services is None else sorted(self.services),
            "mutating_only": self.mutating_only,
            "fail_writes_after": self.fail_writes_after,
        }


class LbgpMiddleware:
    """WSGI middleware in front of moto: control endpoints, call counting and
    fault injection.

    moto's backends are not thread-safe, so the requests are *handled* by moto
    one at a time (``moto_lock``); connections, injected latency and fault
    decisions are concurrent.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        reset_moto: Callable[[], None],
        model_conflicts: bool = True,
        fidelity_settings: Any = None,
    ) -> None:
        self.app = app
        self.reset_moto = reset_moto
        self.model_conflicts = model_conflicts
        # The ``fidelity.settings`` module (None: no ``/_lbgp/fidelity``).
        self.fidelity_settings = fidelity_settings
        self.moto_lock = threading.RLock()
        self.state_lock = threading.Lock()
        # Items in a TransactWriteItems being handled, with how many.
        self.transacting: dict[tuple[str, str], int] = {}
        self._set_faults(FaultConfig())
        self._reset_calls()

    # -- state --------------------------------------------------------------
    def _set_faults(self, config: FaultConfig) -> None:
        self.faults = config
        self.rng = random.Random(config.seed)
        self.writes_applied = 0

    def _reset_calls(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.detail: list[dict[str, Any]] = []
        self.seq = 0

    # -- WSGI ---------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            status, headers, body = self._control(environ, path)
            start_response(status, headers)
            return [body]

        classified = classify(environ)
        if classified is None:
            status, headers, body = self._call_moto(environ)
            start_response(status, headers)
            return [body]

        service, action, region = classified
        mutating = is_mutating(service, action)
        with self.state_lock:
            faults = self.faults
            self.seq += 1
            seq = self.seq
            per_service = self.counts.setdefault(service, {})
            per_service[action] = per_service.get(action, 0) + 1
            outcome = "ok"
            if faults.applies_to(service):
                if faults.fail_writes_after is not None and mutating and (
                    self.writes_applied >= faults.fail_writes_after
                ):
                    outcome = "writes_failed"
                draw = self.rng.random() if faults.active else 1.0
                if outcome == "ok":
                    eligible = mutating or not faults.mutating_only
                    if eligible and draw < faults.throttle_p:
                        outcome = "throttled"
                    elif eligible and draw < faults.throttle_p + faults.error5xx_p:
                        outcome = "5xx"
                    elif mutating and draw < (
                        faults.throttle_p + faults.error5xx_p + faults.lost_response_p
                    ):
                        outcome = "lost"
                if outcome in ("ok", "lost") and mutating:
                    self.writes_applied += 1
                latency = faults.latency_ms + (faults.write_latency_ms if mutating else 0.0)
            else:
                latency = 0.0
            record = {
                "seq": seq,
                "service": service,
                "action": action,
                "region": region,
                "mutating": mutating,
                "faulted": outcome != "ok",
                "outcome": outcome,
                "status": None,
                # Wall-clock seconds when the answer was ready (after any
                # injected latency): for "when was the last write
                # acknowledged" measurements.
                "answered_at": None,
            }
            self.detail.append(record)
            if len(self.detail) > MAX_CALL_DETAIL:
                del self.detail[: len(self.detail) - MAX_CALL_DETAIL]

        held: list[tuple[str, str]] = []
        if self.model_conflicts and outcome == "ok" and service == "dynamodb" and action in ITEM_WRITES:
            conflict = self._enter_transaction(action, region, _read_body(environ), held)
            if conflict is not None:
                code, headers, body = conflict
                record["outcome"] = "conflict"
                record["status"] = code
                record["answered_at"] = time.time()
                start_response(_status_line(code), headers)
                return [body]
        try:
            return self._answer(environ, start_response, record, outcome, latency, service)
        finally:
            if held:
                with self.state_lock:
                    for key in held:
                        self.transacting[key] -= 1
                        if not self.transacting[key]:
                            del self.transacting[key]

    def _enter_transaction(
        self, action: str, region: str, body: bytes, held: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """DynamoDB's transaction conflicts (moto handles one request at a
        time and has none): a TransactWriteItems any of whose items is in
        another TransactWriteItems still being handled is cancelled with
        ``TransactionConflict`` for those items; a PutItem, UpdateItem or
        DeleteItem of such an item fails with ``TransactionConflictException``.
        Otherwise a transaction's items are marked (in ``held``) until it is
        answered."""
        def key_attributes(table: str) -> tuple[str, ...]:
            with self.moto_lock:
                return _key_attributes(region, table)

        keys = item_keys(action, body, key_attributes)
        with self.state_lock:
            busy = [key in self.transacting for key in keys]
            if action != "TransactWriteItems":
                return conflict_response(None) if any(busy) else None
            if any(busy):
                return conflict_response(busy)
            for key in keys:
                self.transacting[key] = self.transacting.get(key, 0) + 1
            held.extend(keys)
        return None

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        record: dict[str, Any],
        outcome: str,
        latency: float,
        service: str,
    ) -> Iterable[bytes]:
        if latency:
            time.sleep(latency / 1000.0)

        if outcome in ("throttled", "5xx", "writes_failed"):
            code, headers, body = error_response(service, outcome)
            record["status"] = code
            record["answered_at"] = time.time()
            start_response(_status_line(code), headers)
            return [body]

        status, headers, body = self._call_moto(environ)
        if outcome == "lost":
            code, headers, body = error_response(service, "lost")
            status = _status_line(code)
        record["status"] = int(status.split(" ", 1)[0])
        record["answered_at"] = time.time()
        start_response(status, headers)
        return [body]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run moto to completion (under the moto lock) and buffer its answer."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        with self.moto_lock:
            result = self.app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        return captured["status"], headers, body

    # -- control endpoints --------------------------------------------------
    def _control(self, environ: dict[str, Any], path: str) -> tuple[str, list[tuple[str, str]], bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        route = path[len(CONTROL_PREFIX):].strip("/")
        try:
            if route == "health" and method in ("GET", "HEAD"):
                return _text(200, "ok")
            if route == "faults":
                if method == "GET":
                    with self.state_lock:
                        return _json(200, self.faults.as_dict())
                if method == "DELETE":
                    with self.state_lock:
                        self._set_faults(FaultConfig())
                    return _json(200, FaultConfig().as_dict())
                if method in ("POST", "PUT"):
                    raw = _read_body(environ)
                    data = json.loads(raw.decode() or "{}") if raw.strip() else {}
                    if not isinstance(data, dict):
                        raise FaultConfigError("the body must be a JSON object")
                    config = FaultConfig(data)
                    with self.state_lock:
                        self._set_faults(config)
                    return _json(200, config.as_dict())
            if route == "calls" and method == "GET":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                detail = (query.get("detail") or ["0"])[0].lower() in ("1", "true", "yes")
                with self.state_lock:
                    if detail:
                        return _json(200, [dict(r) for r in self.detail])
                    return _json(200, {s: dict(a) for s, a in self.counts.items()})
            if route == "calls/reset" and method == "POST":
                with self.state_lock:
                    self._reset_calls()
                return _json(200, {})
            if route == "fidelity" and self.fidelity_settings is not None:
                settings = self.fidelity_settings
                if method == "GET":
                    return _json(200, settings.current().as_dict())
                if method == "DELETE":
                    with self.moto_lock:
                        return _json(200, settings.reset().as_dict())
                if method in ("POST", "PUT"):
                    raw = _read_body(environ)
                    data = json.loads(raw.decode() or "{}") if raw.strip() else {}
                    if not isinstance(data, dict):
                        raise FaultConfigError("the body must be a JSON object")
                    with self.moto_lock:  # never in the middle of a request
                        return _json(200, settings.replace(data).as_dict())
            if route == "reset" and method == "POST":
                with self.moto_lock:
                    self.reset_moto()
                    if self.fidelity_settings is not None:
                        self.fidelity_settings.reset()
                with self.state_lock:
                    self._reset_calls()
                    self._set_faults(FaultConfig())
                return _json(200, {"reset": True})
        except (FaultConfigError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no such endpoint: {method} {path}"})


def _status_line(code: int) -> str:
    from http import HTTPStatus

    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def _json(code: int, data: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    body = json.dumps(data, sort_keys=True).encode()
    return (
        _status_line(code),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        body,
    )


def _text(code: int, text: str) -> tuple[str, list[tuple[str, str]], bytes]:
    body = text.encode()
    return (
        _status_line(code),
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        body,
    )


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #
def build_app(plain: bool = False) -> tuple[LbgpMiddleware, Any]:
    """The WSGI app (middleware + moto's dispatcher) and moto's dispatcher."""
    _speed_up_startup()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import fidelity  # also with --plain: its settings are accepted (and unused) there

    if not plain:
        fidelity.apply()

    dispatcher = DomainDispatcherApplication(create_backend_app)

    def reset_moto() -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    middleware = LbgpMiddleware(
        dispatcher, reset_moto, model_conflicts=not plain, fidelity_settings=fidelity.settings
    )
    return middleware, dispatcher


def warm_up(dispatcher: Any, services: Iterable[str] = ("ec2", "dynamodb", "sns")) -> None:
    """Build moto's per-service Flask apps now rather than on the first request."""
    from moto.moto_server.werkzeug_app import create_backend_app

    for service in services:
        with dispatcher.lock:
            if service not in dispatcher.app_instances:
                dispatcher.app_instances[service] = create_backend_app(service)


def warm_up_models(app: LbgpMiddleware, region: str = "us-east-1") -> None:
    """Parse the botocore models moto serialises with, and build the default
    region's EC2 backend. Runs after the listening line, under the moto lock:
    a request that arrives meanwhile waits for it instead of doing it."""
    with app.moto_lock:
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.core.utils import get_service_model
            from moto.ec2.models import ec2_backends

            for service in ("ec2", "dynamodb", "sns"):
                get_service_model(service)
            ec2_backends[DEFAULT_ACCOUNT_ID][region]
        except Exception as exc:  # only an optimisation
            print(f"lbgp emulator: warm-up skipped: {exc!r}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: the OS picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--plain", action="store_true", help="moto without the fidelity patches")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="do not exit at EOF on stdin (for running by hand in the background)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    started = time.monotonic()
    app, dispatcher = build_app(plain=args.plain)
    warm_up(dispatcher)

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    class Handler(MotoRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if args.verbose:
                super().log_request(code, size)

    server = make_server(args.host, args.port, app, threaded=True, request_handler=Handler)
    server.daemon_threads = True
    port = server.server_port

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if not args.ignore_stdin:

        def watch_stdin() -> None:
            # Whatever is written to stdin is ignored; EOF (or no stdin at
            # all) stops the server.
            try:
                while sys.stdin.buffer.read1(65536):
                    pass
            except Exception:  # noqa: BLE001 - closed / missing stdin
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    serving = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serving.start()

    # Warm up in the background: whichever of it and the first request takes
    # the moto lock first does the (one-off) work, the other waits for it.
    warm = threading.Thread(target=warm_up_models, args=(app,), name="warm-up", daemon=True)
    warm.start()
    print(LISTENING_LINE.format(port=port), flush=True)
    # That line is all stdout ever carries: anything printed later (moto
    # prints a few diagnostics) goes to stderr, so a harness that stops
    # reading stdout can never block us on a full pipe.
    try:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if args.verbose:
        print(
            f"lbgp emulator ({'plain' if args.plain else 'patched'}) ready in "
            f"{time.monotonic() - started:.2f}s on {args.host}:{port}",
            file=sys.stderr,
            flush=True,
        )

    while not stop.wait(0.5):
        pass
    # Nothing to save (moto's state lives in memory): close the listening
    # socket and leave at once, without waiting for open connections.
    server.server_close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
