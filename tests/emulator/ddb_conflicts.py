"""DynamoDB transaction conflicts for lbgp's emulator (fidelity gap h).

moto handles one request at a time, so concurrent transactions never meet.
The launcher's middleware (``LbgpMiddleware._enter_transaction``) uses these
helpers to find the items a write touches and to answer as DynamoDB does
when one of them is in a transaction still being handled.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

ITEM_WRITES = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem")


def _key_attributes(region: str, table: str) -> tuple[str, ...]:
    """The key attributes of ``table``, from moto's model (``pk``, ``sk`` when
    it cannot be found, the schema of every lbgp table)."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        found = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table)
        return tuple(a for a in (found.hash_key_attr, found.range_key_attr) if a)
    except Exception:
        return ("pk", "sk")


def item_keys(
    action: str, body: bytes, key_attributes: Callable[[str], tuple[str, ...]]
) -> list[tuple[str, str]]:
    """(table, key) of each item a DynamoDB write touches, in request order;
    ``key_attributes(table)`` names the key of a ``Put``'s item."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []

    def key_of(op: dict[str, Any]) -> tuple[str, str]:
        table = str(op.get("TableName", ""))
        key = op.get("Key")
        if key is None:
            item = op.get("Item") or {}
            key = {a: item.get(a) for a in key_attributes(table)}
        return table, json.dumps(key, sort_keys=True)

    if action == "TransactWriteItems":
        return [
            key_of(op)
            for entry in request.get("TransactItems") or []
            for op in entry.values()
            if isinstance(op, dict)
        ]
    return [key_of(request)]


def conflict_response(busy: list[bool] | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """DynamoDB's answer to a write that met an ongoing transaction: for a
    TransactWriteItems (``busy``: which items met one), a
    ``TransactionCanceledException`` with a cancellation reason per item;
    for a single-item write, ``TransactionConflictException``."""
    if busy is None:
        payload: dict[str, Any] = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
            "message": "Transaction is ongoing for the item",
        }
    else:
        reasons = [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            if b
            else {"Code": "None"}
            for b in busy
        ]
        payload = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons ["
            + ", ".join(r["Code"] for r in reasons)
            + "]",
            "CancellationReasons": reasons,
        }
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return 400, headers, body
