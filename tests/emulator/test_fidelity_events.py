"""Fidelity tests: EventBridge event patterns (behaviour 12).

Tests taking the ``server`` fixture run on the patched emulator (AWS's
behaviour) and on plain moto (the gap still there, ``aws_or_gap``).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from conftest import Emulator, aws_or_gap

TAG_EVENT = {
    "version": "0",
    "id": "148a3eeb-113d-5a73-92c3-c0a71175ff90",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2026-11-20T09:19:44Z",
    "region": "eu-west-1",
    "resources": [],
    "detail": {
        "eventName": "CreateTags",
        "requestParameters": {
            "resourcesSet": {"items": [{"resourceId": "i-0f9e8d7c6b5a40312"}, {"resourceId": "tgw-0a1b2c3d4e5f60718"}]},
            "tagSet": {"items": [{"key": "lbgp:mesh", "value": "other"}, {"key": "team", "value": "default"}]},
        },
    },
}
ON_TGW = {"detail": {"requestParameters": {"resourcesSet": {"items": {"resourceId": [{"prefix": "tgw-"}]}}}}}


def _delivered(server: Emulator, pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether a rule with ``pattern`` on the default bus delivers ``event``
    to its SQS target (PutEvents, the path every real event takes)."""
    events = server.client("events", "eu-west-1")
    sqs = server.client("sqs", "eu-west-1")
    queue = sqs.create_queue(QueueName="pattern-target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="pattern", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule="pattern", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
            }
        ]
    )
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0, MaxNumberOfMessages=10).get("Messages", [])
    return len(got) == 1


def test_12_a_field_inside_an_array_of_objects_matches(server: Emulator) -> None:
    # eb-event-patterns-arrays.html: a pattern field matches any element of
    # an array; CloudTrail's tag calls carry their resources that way.
    aws_or_gap(server, _delivered(server, ON_TGW, TAG_EVENT), "pattern on resourcesSet.items[].resourceId")


def test_12_fields_of_one_sub_pattern_match_in_the_same_element(emu: Emulator) -> None:
    # Event Ruler's array guard: key and value come from different elements
    # here, so the pattern does not match; from the same element, it does.
    pattern = {"detail": {"requestParameters": {"tagSet": {"items": {"key": ["lbgp:mesh"], "value": ["default"]}}}}}
    assert not _delivered(emu, pattern, TAG_EVENT)
    event = json.loads(json.dumps(TAG_EVENT))
    event["detail"]["requestParameters"]["tagSet"]["items"][0]["value"] = "default"
    emu.reset()
    assert _delivered(emu, pattern, event)


def test_12_exists_false_under_a_missing_parent(emu: Emulator) -> None:
    # Ruler matches flattened paths: a leaf under a missing object is a
    # missing leaf, so exists:false matches it (the templates rely on this
    # for calls made without a session issuer).
    pattern = {"detail": {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": False}]}}}}}
    answer = emu.client("events", "eu-west-1").test_event_pattern(
        EventPattern=json.dumps(pattern), Event=json.dumps(TAG_EVENT)
    )
    assert answer["Result"] is True


def test_12_test_event_pattern_answers(server: Emulator) -> None:
    # API_TestEventPattern.html: {"Result": true|false}.
    events = server.client("events", "eu-west-1")
    try:
        yes = events.test_event_pattern(EventPattern=json.dumps(ON_TGW), Event=json.dumps(TAG_EVENT)).get("Result")
        no = events.test_event_pattern(
            EventPattern=json.dumps({"source": ["aws.s3"]}), Event=json.dumps(TAG_EVENT)
        ).get("Result")
    except ClientError:
        yes = no = None
    aws_or_gap(server, yes is True and no is False, "TestEventPattern")


def test_12_test_event_pattern_refuses_bad_input(emu: Emulator) -> None:
    events = emu.client("events", "eu-west-1")
    try:
        events.test_event_pattern(EventPattern='{"source": "aws.ec2"}', Event=json.dumps(TAG_EVENT))
        raise AssertionError("a pattern whose value is not an array was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidEventPatternException"
    without_id = {k: v for k, v in TAG_EVENT.items() if k != "id"}
    try:
        events.test_event_pattern(EventPattern=json.dumps(ON_TGW), Event=json.dumps(without_id))
        raise AssertionError("an event without id was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException"
