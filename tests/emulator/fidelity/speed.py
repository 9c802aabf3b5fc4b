"""Emulator speed, not AWS behaviour: nothing here changes an answer.

moto 5.2.5's ``transact_write_items`` keeps a copy of each table a
transaction touches, to roll back on failure, but it deep-copies the table
once per *item* of the transaction rather than once per table. lbgp writes
its ledger in transactions of up to 99 items, so writing n routes cost the
emulator O(n^2) (about 80 s of CPU for 1,160 routes, 2.5 s per transaction at
1,000 items). The copy is now made once per table per transaction: the same
rollback, the same answers.
"""

from __future__ import annotations

import copy as _copy
import threading
from typing import Any

from ._common import _patch

_local = threading.local()


class _CopyOncePerTransaction:
    """Stands in for the ``copy`` module inside moto's DynamoDB models:
    while a transaction runs, ``deepcopy`` of a table it already copied
    returns that copy (items and everything else are copied as before)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_copy, name)

    @staticmethod
    def deepcopy(obj: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        cache = getattr(_local, "copies", None)
        if cache is None or memo is not None or not isinstance(obj, Table):
            return _copy.deepcopy(obj, memo)
        key = id(obj)
        if key not in cache:
            cache[key] = (obj, _copy.deepcopy(obj))
        return cache[key][1]


def patch_transaction_copies() -> None:
    """Copy each table once per TransactWriteItems (was once per item)."""
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models import DynamoDBBackend

    ddb_models.copy = _CopyOncePerTransaction()  # type: ignore[assignment]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: Any) -> None:
        _local.copies = {}
        try:
            return original(self, transact_items)
        finally:
            _local.copies = None

    _patch(DynamoDBBackend, "transact_write_items", transact_write_items)
