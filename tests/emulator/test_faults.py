"""The launcher and its middleware: fault injection, call counting, control
endpoints, concurrency, startup and shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import REGIONS, Emulator, error_of, start_emulator, wait_listening


def vpc_count(emu: Emulator, region: str = "us-east-1") -> int:
    return len(emu.ec2(region).describe_vpcs()["Vpcs"])


@pytest.fixture
def table(emu: Emulator) -> Any:
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName="lbgp",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def item_exists(ddb: Any, pk: str) -> bool:
    return "Item" in ddb.get_item(TableName="lbgp", Key={"pk": {"S": pk}})


def put(ddb: Any, pk: str) -> None:
    ddb.put_item(TableName="lbgp", Item={"pk": {"S": pk}})


# --------------------------------------------------------------------------- #
# Control endpoints
# --------------------------------------------------------------------------- #


def test_health(emu: Emulator) -> None:
    assert emu.control("GET", "/_lbgp/health") == (200, "ok")


def test_unknown_endpoint_and_bad_fault_config(emu: Emulator) -> None:
    assert emu.control("GET", "/_lbgp/nope")[0] == 404
    assert emu.control("POST", "/_lbgp/faults", {"throttle_p": 2})[0] == 400
    assert emu.control("POST", "/_lbgp/faults", {"trottle_p": 0.1})[0] == 400
    assert emu.control("POST", "/_lbgp/faults", {"throttle_p": 0.6, "error5xx_p": 0.6})[0] == 400
    assert emu.control("POST", "/_lbgp/faults", {"fail_writes_after": -1})[0] == 400


def test_faults_get_post_delete(emu: Emulator) -> None:
    config = emu.set_faults(seed=7, throttle_p=0.25, services=["ec2"])
    assert config["throttle_p"] == 0.25 and config["services"] == ["ec2"] and config["seed"] == 7
    assert emu.control("GET", "/_lbgp/faults")[1] == config
    status, cleared = emu.control("DELETE", "/_lbgp/faults")
    assert status == 200 and cleared["throttle_p"] == 0 and cleared["services"] is None
    emu.set_faults(throttle_p=1.0)
    emu.set_faults()  # POST {} clears too
    assert emu.control("GET", "/_lbgp/faults")[1] == cleared


def test_fidelity_settings_get_post_delete(emulators: dict[str, Emulator]) -> None:
    for emu in emulators.values():  # the plain server accepts (and ignores) them too
        emu.reset()
        status, defaults = emu.control("GET", "/_lbgp/fidelity")
        assert status == 200
        assert defaults["vpc_route_quota"] == 50 and defaults["search_routes_paging"] == "token"
        assert defaults["peering_resource_type"] == "peering" and defaults["filter_value_limit"] == 200
        assert defaults["attachment_deleted_visible_seconds"] is None
        timed = [k for k in defaults if k.endswith("_seconds") and k != "attachment_deleted_visible_seconds"]
        assert len(timed) == 9 and all(defaults[k] == 0 for k in timed)
        # POST replaces everything: fields left out go back to their defaults.
        first = emu.set_fidelity(read_after_write_seconds=0.25, vpc_route_quota=3)
        assert (first["read_after_write_seconds"], first["vpc_route_quota"]) == (0.25, 3)
        second = emu.set_fidelity(search_routes_paging="legacy")
        assert second["read_after_write_seconds"] == 0 and second["vpc_route_quota"] == 50
        assert emu.control("GET", "/_lbgp/fidelity")[1] == second
        assert emu.control("DELETE", "/_lbgp/fidelity") == (200, defaults)
        for bad in (
            {"read_after_write": 1},
            {"read_after_write_seconds": -1},
            {"tgw_pending_seconds": True},
            {"vpc_route_quota": 0},
            {"search_routes_paging": "pages"},
            {"peering_resource_type": "tgw"},
            {"reject_multi_interface_instances": "yes"},
        ):
            assert emu.control("POST", "/_lbgp/fidelity", bad)[0] == 400, bad
        assert emu.control("GET", "/_lbgp/fidelity")[1] == defaults
        # POST /_lbgp/reset restores them too.
        emu.set_fidelity(vpc_route_quota=None, attachment_deleted_visible_seconds=1.5)
        emu.reset()
        assert emu.control("GET", "/_lbgp/fidelity")[1] == defaults


def test_reset_clears_state_counts_and_faults(emu: Emulator) -> None:
    ec2 = emu.ec2()
    before = vpc_count(emu)
    ec2.create_vpc(CidrBlock="10.0.0.0/16")
    emu.set_faults(latency_ms=5)
    assert vpc_count(emu) == before + 1
    emu.reset()
    assert emu.calls() == {}
    assert emu.control("GET", "/_lbgp/faults")[1]["latency_ms"] == 0
    assert vpc_count(emu) == before


# --------------------------------------------------------------------------- #
# Call counting
# --------------------------------------------------------------------------- #


def test_counts_per_service_and_action(emu: Emulator, table: Any) -> None:
    ec2 = emu.ec2()
    sns = emu.client("sns")
    emu.control("POST", "/_lbgp/calls/reset")
    ec2.describe_route_tables()
    ec2.describe_route_tables()
    ec2.create_vpc(CidrBlock="10.0.0.0/16")
    emu.ec2(REGIONS[2]).describe_vpcs()
    put(table, "a")
    put(table, "b")
    topic = sns.create_topic(Name="lbgp-events")["TopicArn"]
    sns.publish(TopicArn=topic, Message="hello")
    assert emu.calls() == {
        "ec2": {"DescribeRouteTables": 2, "CreateVpc": 1, "DescribeVpcs": 1},
        "dynamodb": {"PutItem": 2},
        "sns": {"CreateTopic": 1, "Publish": 1},
    }
    detail = emu.calls(detail=True)
    assert [(c["service"], c["action"]) for c in detail][:3] == [
        ("ec2", "DescribeRouteTables"),
        ("ec2", "DescribeRouteTables"),
        ("ec2", "CreateVpc"),
    ]
    assert detail[3]["region"] == REGIONS[2]
    assert all(c["outcome"] == "ok" and not c["faulted"] and c["status"] == 200 for c in detail)
    answered = [c["answered_at"] for c in detail]
    assert answered == sorted(answered) and answered[-1] <= time.time()
    assert [c["mutating"] for c in detail] == [False, False, True, False, True, True, False, True]
    assert emu.control("POST", "/_lbgp/calls/reset")[0] == 200
    assert emu.calls() == {}


def test_body_still_reaches_moto(emu: Emulator) -> None:
    """Reading the form body to count the call must not eat it."""
    vpc = emu.ec2().create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]
    assert vpc["CidrBlock"] == "10.77.0.0/16"
    assert emu.calls()["ec2"]["CreateVpc"] == 1


# --------------------------------------------------------------------------- #
# Fault injection
# --------------------------------------------------------------------------- #


def test_throttle_is_not_applied_ec2(emu: Emulator) -> None:
    before = vpc_count(emu)
    emu.set_faults(seed=1, throttle_p=1.0, services=["ec2"])
    code, status, message = error_of(lambda: emu.ec2().create_vpc(CidrBlock="10.0.0.0/16"))
    assert (code, status, message) == ("RequestLimitExceeded", 503, "Request limit exceeded.")
    emu.set_faults()
    assert vpc_count(emu) == before
    assert [c["outcome"] for c in emu.calls(detail=True) if c["action"] == "CreateVpc"] == ["throttled"]


def test_throttle_is_not_applied_dynamodb(emu: Emulator, table: Any) -> None:
    emu.set_faults(throttle_p=1.0, services=["dynamodb"])
    code, status, message = error_of(lambda: put(table, "k"))
    assert (code, status, message) == ("ThrottlingException", 400, "Rate exceeded")
    emu.ec2().describe_vpcs()  # ec2 is not in the list: untouched
    emu.set_faults()
    assert not item_exists(table, "k")


def test_throttle_sns_format(emu: Emulator) -> None:
    sns = emu.client("sns")
    emu.set_faults(throttle_p=1.0, services=["sns"])
    code, status, _ = error_of(lambda: sns.list_topics())
    assert (code, status) == ("Throttling", 400)


def test_5xx_is_not_applied(emu: Emulator, table: Any) -> None:
    before = vpc_count(emu)
    emu.set_faults(error5xx_p=1.0, services=["ec2", "dynamodb"])
    assert error_of(lambda: emu.ec2().create_vpc(CidrBlock="10.0.0.0/16"))[:2] == ("Unavailable", 503)
    assert error_of(lambda: put(table, "k"))[:2] == ("InternalServerError", 500)
    emu.set_faults()
    assert vpc_count(emu) == before and not item_exists(table, "k")


def test_lost_response_is_applied_but_errors(emu: Emulator, table: Any) -> None:
    before = vpc_count(emu)
    emu.set_faults(lost_response_p=1.0, services=["ec2", "dynamodb"])
    assert error_of(lambda: emu.ec2().create_vpc(CidrBlock="10.0.0.0/16"))[:2] == ("InternalError", 500)
    assert error_of(lambda: put(table, "k"))[:2] == ("InternalServerError", 500)
    # Reads are never "lost".
    assert vpc_count(emu) == before + 1
    assert item_exists(table, "k")
    outcomes = [(c["action"], c["outcome"]) for c in emu.calls(detail=True) if c["mutating"]]
    assert outcomes == [("CreateVpc", "lost"), ("PutItem", "lost")]


def test_mutating_only(emu: Emulator) -> None:
    ec2 = emu.ec2()
    emu.set_faults(throttle_p=1.0, mutating_only=True)
    ec2.describe_vpcs()
    ec2.describe_route_tables()
    assert error_of(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/16"))[0] == "RequestLimitExceeded"
    assert error_of(lambda: ec2.delete_vpc(VpcId="vpc-12345678"))[0] == "RequestLimitExceeded"


def test_fail_writes_after(emu: Emulator, table: Any) -> None:
    ec2 = emu.ec2()
    before = vpc_count(emu)
    emu.set_faults(fail_writes_after=3, services=["ec2", "dynamodb"])
    ec2.create_vpc(CidrBlock="10.1.0.0/16")
    put(table, "a")
    ec2.create_vpc(CidrBlock="10.2.0.0/16")
    for _ in range(2):  # every further write fails, not applied
        assert error_of(lambda: ec2.create_vpc(CidrBlock="10.3.0.0/16"))[:2] == ("InternalError", 500)
        assert error_of(lambda: put(table, "b"))[:2] == ("InternalServerError", 500)
    assert vpc_count(emu) == before + 2  # reads still work
    assert item_exists(table, "a") and not item_exists(table, "b")
    assert [c["outcome"] for c in emu.calls(detail=True) if c["mutating"]] == ["ok"] * 3 + ["writes_failed"] * 4
    emu.control("DELETE", "/_lbgp/faults")
    ec2.create_vpc(CidrBlock="10.3.0.0/16")
    assert vpc_count(emu) == before + 3


def _outcomes(emu: Emulator, seed: int, n: int = 40) -> list[str]:
    emu.control("POST", "/_lbgp/calls/reset")
    emu.set_faults(seed=seed, throttle_p=0.3, error5xx_p=0.2, services=["ec2"])
    ec2 = emu.ec2()
    seen = []
    for _ in range(n):
        try:
            ec2.describe_vpcs()
            seen.append("ok")
        except ClientError as exc:
            seen.append(exc.response["Error"]["Code"])
    emu.set_faults()
    assert [c["outcome"] for c in emu.calls(detail=True)][:n] == [
        {"ok": "ok", "RequestLimitExceeded": "throttled", "Unavailable": "5xx"}[s] for s in seen
    ]
    return seen


def test_same_seed_same_sequence(emu: Emulator) -> None:
    first = _outcomes(emu, seed=42)
    again = _outcomes(emu, seed=42)
    other = _outcomes(emu, seed=43)
    assert first == again
    assert first != other
    assert set(first) == {"ok", "RequestLimitExceeded", "Unavailable"}
    assert 0.2 < first.count("RequestLimitExceeded") / len(first) < 0.45


def test_latency_applies_to_listed_services_only(emu: Emulator) -> None:
    ec2, sns = emu.ec2(), emu.client("sns")
    ec2.describe_vpcs()
    sns.list_topics()
    emu.set_faults(latency_ms=250, services=["ec2"])
    start = time.monotonic()
    ec2.describe_vpcs()
    slow = time.monotonic() - start
    start = time.monotonic()
    sns.list_topics()
    fast = time.monotonic() - start
    assert 0.25 <= slow < 1.5
    assert fast < 0.2


def test_write_latency_slows_mutating_calls_only(emu: Emulator) -> None:
    ec2 = emu.ec2()
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    emu.set_faults(write_latency_ms=300, services=["ec2"])
    start = time.monotonic()
    ec2.describe_vpcs()
    read = time.monotonic() - start
    start = time.monotonic()
    ec2.create_route_table(VpcId=vpc)
    write = time.monotonic() - start
    assert read < 0.2
    assert 0.3 <= write < 1.5


def test_concurrent_requests_are_served_in_parallel(emu: Emulator) -> None:
    """Injected latency overlaps across connections: the server is threaded."""
    clients = [emu.ec2(region) for region in REGIONS]
    emu.set_faults(latency_ms=300, services=["ec2"])
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            ec2 = clients[i % len(clients)]
            ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")
            ec2.describe_vpcs()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - start
    assert not errors
    assert elapsed < 6 * 2 * 0.3  # serial would be >= 3.6 s
    assert emu.calls()["ec2"]["CreateVpc"] == 6


def test_raw_throttle_bodies_match_aws_formats(emu: Emulator) -> None:
    """The exact wire formats aws-sdk-rust parses (ec2Query errors, awsJson1_0
    __type, awsQuery ErrorResponse)."""
    emu.set_faults(throttle_p=1.0)
    request = urllib.request.Request(
        emu.url + "/",
        data=b"Action=DescribeVpcs&Version=2016-11-15",
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        assert exc.code == 503
        assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>')
        assert "<RequestID>" in body
    request = urllib.request.Request(
        emu.url + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.PutItem",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert json.loads(exc.read()) == {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate exceeded",
        }
    assert emu.calls() == {"ec2": {"DescribeVpcs": 1}, "dynamodb": {"PutItem": 1}}


# --------------------------------------------------------------------------- #
# Launcher: the listening line, startup time, exit on stdin EOF and signals
# --------------------------------------------------------------------------- #


def test_listening_line_and_startup_time(emulators: dict[str, Emulator]) -> None:
    for server in emulators.values():
        print(f"{server.name} emulator: LISTENING after {server.startup_s:.2f}s")
        assert 0 < server.port < 65536
        assert server.startup_s < 15


@pytest.fixture(scope="module")
def spare_emulators() -> Any:
    """Four plain emulators started together (startup is the slow part), one
    per shutdown test below."""
    procs = {
        "eof": start_emulator("--plain"),
        "sigterm": start_emulator("--plain"),
        "sigint": start_emulator("--plain"),
        "ignore-stdin": start_emulator("--plain", "--ignore-stdin"),
    }
    ports = {name: wait_listening(proc)[0] for name, proc in procs.items()}
    yield {name: (proc, ports[name]) for name, proc in procs.items()}
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def health(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lbgp/health", timeout=5) as r:
        return r.read()


def test_exits_on_stdin_eof(spare_emulators: dict[str, Any]) -> None:
    proc, port = spare_emulators["eof"]
    assert health(port) == b"ok"
    proc.stdin.close()  # what happens when the harness dies
    assert proc.wait(10) == 0
    assert proc.stdout.read() == b""  # exactly one line was printed


@pytest.mark.parametrize("name, signum", [("sigterm", signal.SIGTERM), ("sigint", signal.SIGINT)])
def test_exits_on_signal(spare_emulators: dict[str, Any], name: str, signum: int) -> None:
    proc, port = spare_emulators[name]
    assert health(port) == b"ok"
    proc.send_signal(signum)
    assert proc.wait(10) == 0


def test_ignore_stdin_keeps_running(spare_emulators: dict[str, Any]) -> None:
    proc, port = spare_emulators["ignore-stdin"]
    proc.stdin.close()
    time.sleep(0.7)
    assert proc.poll() is None
    assert health(port) == b"ok"
    proc.terminate()
    assert proc.wait(10) == 0
