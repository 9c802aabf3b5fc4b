"""Behaviour 15: CloudWatch over the Smithy RPC v2 CBOR protocol.

``patch_cloudwatch_cbor`` - moto 5.2.5 answers CloudWatch in the AWS Query
and AWS JSON 1.0 protocols only; a request in Smithy RPC v2 CBOR (``POST
/service/GraniteServiceVersion20100801/operation/<Operation>``, header
``smithy-protocol: rpc-v2-cbor``, CBOR body), which is what aws-sdk-rust's
CloudWatch client sends, finds no route (HTTP 404). AWS: "CloudWatch SDKs
started using two additional protocols: AWS JSON 1.0 and Smithy RPC v2 CBOR
... AWS SDKs will prioritize the protocol that is the most performant for
each language"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-protocols-faq.html;
the protocol: https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html).

Fixed: that path is served by translating the CBOR request into moto's AWS
JSON 1.0 one (same operation, same input) and moto's JSON answer back into
CBOR by the operation's output shape (timestamps as tag 1 epoch seconds,
doubles as floats), errors as a CBOR ``{"__type", "message"}`` with their
status. No answer's content changes. DescribeAlarms also gets the limits
moto does not check: at most 100 ``AlarmNames`` and ``MaxRecords`` 1..100,
else ``ValidationError`` (400).
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import struct
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SERVICE_TARGET = "GraniteServiceVersion20100801"
PATH = "{0}/service/" + SERVICE_TARGET + "/operation/(?P<operation>[A-Za-z0-9]+)$"


# --------------------------------------------------------------------------- #
# A small CBOR codec (RFC 8949): what Smithy RPC v2 CBOR uses
# --------------------------------------------------------------------------- #
class Tagged:
    """A CBOR tagged value."""

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value


_BREAK = object()


def cbor_decode(data: bytes) -> Any:
    value, offset = _decode(data, 0)
    if offset != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    initial = data[i]
    i += 1
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        if info == 20:
            return False, i
        if info == 21:
            return True, i
        if info in (22, 23):
            return None, i
        if info == 25:
            return struct.unpack(">e", data[i : i + 2])[0], i + 2
        if info == 26:
            return struct.unpack(">f", data[i : i + 4])[0], i + 4
        if info == 27:
            return struct.unpack(">d", data[i : i + 8])[0], i + 8
        if info == 31:
            return _BREAK, i
        raise ValueError(f"unsupported simple value {info}")
    if info < 24:
        arg: int | None = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        arg = int.from_bytes(data[i : i + size], "big")
        i += size
    elif info == 31:
        arg = None  # indefinite length
    else:
        raise ValueError(f"bad additional information {info}")
    if major == 0:
        return arg, i
    if major == 1:
        return -1 - (arg or 0), i
    if major in (2, 3):
        if arg is None:
            chunks: list[Any] = []
            while True:
                chunk, i = _decode(data, i)
                if chunk is _BREAK:
                    break
                chunks.append(chunk)
            joined: Any = b"".join(chunks) if major == 2 else "".join(chunks)
            return joined, i
        raw = data[i : i + arg]
        return (bytes(raw) if major == 2 else raw.decode("utf-8")), i + arg
    if major == 4:
        items: list[Any] = []
        while arg is None or len(items) < arg:
            item, i = _decode(data, i)
            if item is _BREAK:
                break
            items.append(item)
        return items, i
    if major == 5:
        mapping: dict[Any, Any] = {}
        while arg is None or len(mapping) < arg:
            key, i = _decode(data, i)
            if key is _BREAK:
                break
            mapping[key], i = _decode(data, i)
        return mapping, i
    if major == 6:
        value, i = _decode(data, i)
        return Tagged(arg or 0, value), i
    raise ValueError(f"unknown major type {major}")


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([(major << 5) | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < (1 << (8 * size)):
            return bytes([(major << 5) | info]) + arg.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def cbor_encode(value: Any) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, Tagged):
        return _head(6, value.tag) + cbor_encode(value.value)
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


# --------------------------------------------------------------------------- #
# CBOR <-> moto's JSON, by the botocore model
# --------------------------------------------------------------------------- #
def _to_json(value: Any) -> Any:
    """A decoded CBOR input as AWS JSON 1.0 input."""
    if isinstance(value, Tagged):
        return _to_json(value.value)  # tag 1: epoch seconds, as JSON has them
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


def _to_cbor(value: Any, shape: Any) -> Any:
    """A JSON output value as the CBOR item its shape calls for."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[name] = _to_cbor(value[name], member)
        return out
    if kind == "list":
        return [_to_cbor(v, shape.member) for v in value]
    if kind == "map":
        return {k: _to_cbor(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        return Tagged(1, _epoch(value))
    if kind in ("double", "float"):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else value
    return value


def _answer(status: int, body: bytes, request_id: str) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-RequestId": request_id,
            "Content-Length": str(len(body)),
        },
        body,
    )


ALARM_NAMES_PER_CALL = 100


def _describe_alarms_limits(operation: str, params: dict[str, Any]) -> str | None:
    """AWS's limits of DescribeAlarms that moto does not check: at most 100
    ``AlarmNames``, ``MaxRecords`` 1..100
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
    The message is in the form of AWS's constraint errors; its exact words
    are not documented."""
    if operation != "DescribeAlarms":
        return None
    names = params.get("AlarmNames") or []
    if len(names) > ALARM_NAMES_PER_CALL:
        return (
            "1 validation error detected: Value at 'alarmNames' failed to satisfy constraint: "
            f"Member must have length less than or equal to {ALARM_NAMES_PER_CALL}"
        )
    records = params.get("MaxRecords")
    if records is not None and not 1 <= int(records) <= 100:
        return (
            f"1 validation error detected: Value '{records}' at 'maxRecords' failed to satisfy constraint: "
            "Member must have value between 1 and 100"
        )
    return None


def cbor_dispatch(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    """Serves one RPC v2 CBOR request through moto's JSON handler."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.request import Request
    from moto.core.utils import get_service_model

    operation = urlsplit(full_url).path.rstrip("/").rsplit("/", 1)[-1]
    raw = request.get_data() if hasattr(request, "get_data") else request.data
    params = cbor_decode(raw) if raw else {}
    refused = _describe_alarms_limits(operation, params or {})
    if refused is not None:
        return _answer(400, cbor_encode({"__type": "ValidationError", "message": refused}), "lbgp-emulator")
    body = json.dumps(_to_json(params or {})).encode()
    json_headers = {
        k: v for k, v in dict(headers).items() if k.lower() not in ("content-type", "content-length", "smithy-protocol")
    }
    json_headers["Content-Type"] = "application/x-amz-json-1.0"
    json_headers["X-Amz-Target"] = f"{SERVICE_TARGET}.{operation}"
    json_headers["Content-Length"] = str(len(body))
    parts = urlsplit(full_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    inner = Request.from_primitives("POST", url, json_headers, body)
    inner.from_wsgi_server = getattr(request, "from_wsgi_server", False)
    status, answer_headers, content = CloudWatchResponse.dispatch(inner, url, json_headers)
    status = int(status)
    request_id = dict(answer_headers or {}).get("x-amzn-RequestId", "lbgp-emulator")
    text = content.decode() if isinstance(content, bytes) else (content or "")
    data = json.loads(text) if text.strip() else {}
    if status >= 300:
        error = {
            "__type": str(data.get("__type", "InternalFailure")),
            "message": str(data.get("message", data.get("Message", ""))),
        }
        return _answer(status, cbor_encode(error), request_id)
    model = get_service_model("cloudwatch")
    output = model.operation_model(operation).output_shape
    return _answer(status, cbor_encode(_to_cbor(data, output) if output is not None else {}), request_id)


def patch_cloudwatch_cbor() -> None:
    """Behaviour 15: CloudWatch answers Smithy RPC v2 CBOR requests."""
    from moto.cloudwatch import urls

    urls.url_paths[PATH] = cbor_dispatch
