"""Fidelity tests: DynamoDB and SNS - gap h (transaction conflicts) and 8
(payload limits).

Tests taking the ``server`` fixture run twice: on the patched emulator they
assert what AWS does; on the plain one (``--plain``) they assert that moto
still shows the gap (``aws_or_gap``) - so a moto upgrade that fixes a gap
makes the plain case fail and tells us to drop the patch. Behaviour that plain
moto already gets right is asserted on both. Test names start with the gap
letter (or behaviour number) of the fidelity package / README.md.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from botocore.exceptions import ClientError

from conftest import Emulator, aws_or_gap, error_of


# --------------------------------------------------------------------------- #
# h. DynamoDB transaction conflicts
# --------------------------------------------------------------------------- #


def _lease_table(server: Emulator) -> Any:
    ddb = server.client("dynamodb")
    ddb.create_table(
        TableName="conflicts",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="conflicts", Item={"pk": {"S": "lease#x"}, "sk": {"S": "lease"}, "token": {"N": "1"}})
    return ddb


def _fenced_put(ddb: Any, n: int) -> dict[str, Any]:
    return {
        "TransactItems": [
            {
                "ConditionCheck": {
                    "TableName": "conflicts",
                    "Key": {"pk": {"S": "lease#x"}, "sk": {"S": "lease"}},
                    "ConditionExpression": "#t = :t",
                    "ExpressionAttributeNames": {"#t": "token"},
                    "ExpressionAttributeValues": {":t": {"N": "1"}},
                }
            },
            {"Put": {"TableName": "conflicts", "Item": {"pk": {"S": "ledger#x"}, "sk": {"S": f"r{n}"}}}},
        ]
    }


def test_h_concurrent_transactions_on_one_item_conflict(server: Emulator) -> None:
    # DynamoDB cancels a transaction that touches an item another ongoing
    # transaction touches (a condition check counts), and refuses a plain
    # write of such an item. moto handles one request at a time: never.
    ddb = _lease_table(server)
    server.set_faults(latency_ms=400, services=["dynamodb"])
    outcomes: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
            outcomes[name] = None
        except ClientError as exc:
            outcomes[name] = (exc.response["Error"]["Code"], exc.response.get("CancellationReasons"))

    first = threading.Thread(target=run, args=("first", lambda: ddb.transact_write_items(**_fenced_put(ddb, 1))))
    first.start()
    time.sleep(0.15)
    threads = [
        threading.Thread(target=run, args=("second", lambda: ddb.transact_write_items(**_fenced_put(ddb, 2)))),
        threading.Thread(
            target=run,
            args=(
                "plain",
                lambda: ddb.update_item(
                    TableName="conflicts",
                    Key={"pk": {"S": "lease#x"}, "sk": {"S": "lease"}},
                    UpdateExpression="SET pending = :p",
                    ExpressionAttributeValues={":p": {"BOOL": True}},
                ),
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in [first, *threads]:
        t.join(10)
    server.control("DELETE", "/_lbgp/faults")
    cancelled = outcomes.get("second") or (None, None)
    aws_or_gap(
        server,
        outcomes.get("first") is None
        and cancelled[0] == "TransactionCanceledException"
        and [r["Code"] for r in cancelled[1] or []] == ["TransactionConflict", "None"]
        and (outcomes.get("plain") or (None,))[0] == "TransactionConflictException",
        "concurrent transactions on one item conflict",
    )
    # Once the first is answered, the same transaction goes through.
    ddb.transact_write_items(**_fenced_put(ddb, 3))
    assert "Item" in ddb.get_item(TableName="conflicts", Key={"pk": {"S": "ledger#x"}, "sk": {"S": "r3"}})


# --------------------------------------------------------------------------- #
# 8. Payload limits
# --------------------------------------------------------------------------- #


def test_8_sns_message_limit_is_262144_bytes(server: Emulator) -> None:
    sns = server.client("sns")
    topic = sns.create_topic(Name="limits")["TopicArn"]
    assert error_of(lambda: sns.publish(TopicArn=topic, Message="a" * 262_144))[0] is None
    too_long = ("InvalidParameter", 400, "Invalid parameter: Message too long")
    ascii_over = error_of(lambda: sns.publish(TopicArn=topic, Message="a" * 262_145))
    assert ascii_over[:2] == too_long[:2]  # moto refuses it too (its message differs)
    # 131,073 characters, 262,146 bytes in UTF-8.
    multibyte_over = error_of(lambda: sns.publish(TopicArn=topic, Message="é" * 131_073))
    # Message attributes count too: name, type and value.
    attribute_over = error_of(
        lambda: sns.publish(
            TopicArn=topic,
            Message="a" * 262_000,
            MessageAttributes={"attr": {"DataType": "String", "StringValue": "v" * 200}},
        )
    )
    aws_or_gap(
        server,
        ascii_over == too_long and multibyte_over == too_long and attribute_over == too_long,
        "SNS counts the message (and its attributes) in UTF-8 bytes and answers 'Invalid parameter: Message too long'",
    )


def test_8_dynamodb_item_size_limit_already_right(server: Emulator) -> None:
    ddb = server.client("dynamodb")
    ddb.create_table(
        TableName="sizes",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    too_big = {"pk": {"S": "big"}, "v": {"S": "x" * 410_000}}  # over 400 KB (409,600 bytes)
    expected = ("ValidationException", 400, "Item size has exceeded the maximum allowed size")
    ddb.put_item(TableName="sizes", Item={"pk": {"S": "ok"}, "v": {"S": "x" * 400_000}})
    assert error_of(lambda: ddb.put_item(TableName="sizes", Item=too_big)) == expected
    assert error_of(lambda: ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "sizes", "Item": too_big}}])) == expected
    assert error_of(
        lambda: ddb.update_item(
            TableName="sizes",
            Key={"pk": {"S": "ok"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "y" * 20_000}},
        )
    ) == ("ValidationException", 400, "Item size to update has exceeded the maximum allowed size")
    assert "big" not in str(ddb.scan(TableName="sizes")["Items"])
