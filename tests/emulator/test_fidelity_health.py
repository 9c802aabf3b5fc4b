"""Behaviours 13-15: what the failover watcher's health and replaced
appliances depend on - termination deletes the primary interface and
blackholes the routes toward it (13), prefix-list routes keep their
destination whatever the target (14), CloudWatch answers the Smithy RPC v2
CBOR protocol of aws-sdk-rust (15)."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from builders import make_vpc
from conftest import aws_or_gap, error_of
from fidelity.cloudwatch import Tagged, cbor_decode, cbor_encode


def _router(ec2: Any, subnet: str) -> tuple[str, str]:
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    eni = next(n for n in instance["NetworkInterfaces"] if n["Attachment"]["DeviceIndex"] == 0)
    return instance["InstanceId"], eni["NetworkInterfaceId"]


def _route(ec2: Any, table: str, dest: str) -> dict[str, Any]:
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    return next(r for r in routes if dest in (r.get("DestinationCidrBlock"), r.get("DestinationPrefixListId")))


# --------------------------------------------------------------------------- #
# 13. Termination
# --------------------------------------------------------------------------- #
def test_13_termination_deletes_the_primary_interface_and_blackholes_its_routes(server: Any) -> None:
    ec2 = server.ec2("eu-west-1")
    vpc, subnet = make_vpc(ec2, "10.30.0.0/16")
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    instance, eni = _router(ec2, subnet)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", NetworkInterfaceId=eni)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.0.0/12", InstanceId=instance)
    ec2.terminate_instances(InstanceIds=[instance])

    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    interface_gone = not ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": [eni]}]
    )["NetworkInterfaces"]
    by_eni, by_instance = _route(ec2, table, "10.0.0.0/8"), _route(ec2, table, "172.16.0.0/12")
    aws_like = (
        interface_gone
        and described["State"]["Name"] == "terminated"
        and not described.get("NetworkInterfaces")
        and "VpcId" not in described
        and all(r.get("State") == "blackhole" for r in (by_eni, by_instance))
        and all(r.get("NetworkInterfaceId") == eni and "InstanceId" not in r for r in (by_eni, by_instance))
    )
    aws_like_what = "primary interface deleted with its instance, routes toward it blackhole naming it"
    if server.patched:
        assert aws_like, (described, by_eni, by_instance)
    aws_or_gap(server, aws_like, aws_like_what)


def test_13_an_interface_kept_on_termination_stays(emu: Any) -> None:
    """``DeleteOnTermination=false`` (a second interface attached by hand)
    keeps the interface, detached - and the primary still goes."""
    ec2 = emu.ec2("eu-west-1")
    _vpc, subnet = make_vpc(ec2, "10.31.0.0/16")
    instance, eni = _router(ec2, subnet)
    extra = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=extra, InstanceId=instance, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[instance])
    left = {n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert extra in left and eni not in left


# --------------------------------------------------------------------------- #
# 14. Prefix-list routes
# --------------------------------------------------------------------------- #
def test_14_prefix_list_routes_to_an_interface_keep_their_destination(server: Any) -> None:
    ec2 = server.ec2("eu-west-1")
    vpc, subnet = make_vpc(ec2, "10.32.0.0/16")
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    _a, eni_a = _router(ec2, subnet)
    _b, eni_b = _router(ec2, subnet)
    pl = ec2.create_managed_prefix_list(
        PrefixListName="corp", MaxEntries=5, AddressFamily="IPv4", Entries=[{"Cidr": "172.16.0.0/12"}]
    )["PrefixList"]["PrefixListId"]
    ec2.create_route(RouteTableId=table, DestinationPrefixListId=pl, NetworkInterfaceId=eni_a)
    code, _status, _message = error_of(
        lambda: ec2.replace_route(RouteTableId=table, DestinationPrefixListId=pl, NetworkInterfaceId=eni_b)
    )
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    listed = [r for r in routes if r.get("DestinationPrefixListId") == pl]
    aws_like = code is None and len(listed) == 1 and listed[0].get("NetworkInterfaceId") == eni_b
    aws_or_gap(server, aws_like, "ReplaceRoute with DestinationPrefixListId of a route to an interface")


def test_14_an_unknown_prefix_list_is_refused(emu: Any) -> None:
    ec2 = emu.ec2("eu-west-1")
    vpc, subnet = make_vpc(ec2, "10.33.0.0/16")
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    _a, eni = _router(ec2, subnet)
    code, status, _ = error_of(
        lambda: ec2.create_route(RouteTableId=table, DestinationPrefixListId="pl-0123456789abcdef0", NetworkInterfaceId=eni)
    )
    assert (code, status) == ("InvalidPrefixListID.NotFound", 400)


# --------------------------------------------------------------------------- #
# 15. CloudWatch over Smithy RPC v2 CBOR
# --------------------------------------------------------------------------- #
def _cbor_call(server: Any, operation: str, params: dict[str, Any], region: str = "eu-west-1") -> tuple[int, Any]:
    url = f"{server.url}/service/GraniteServiceVersion20100801/operation/{operation}"
    body = cbor_encode(params)
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/cbor", "Accept": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
    )
    SigV4Auth(Credentials("testing", "testing"), "monitoring", region).add_auth(request)
    prepared = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=10) as answer:
            return answer.status, cbor_decode(answer.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, cbor_decode(raw)
        except Exception:
            return error.code, raw


def test_15_cloudwatch_answers_rpc_v2_cbor(server: Any) -> None:
    cloudwatch = server.client("cloudwatch", "eu-west-1")  # botocore speaks AWS JSON 1.0
    cloudwatch.put_metric_alarm(
        AlarmName="vpn-a-tunnel", Namespace="AWS/VPN", MetricName="TunnelState", Statistic="Maximum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="vpn-a-tunnel", StateValue="ALARM", StateReason="tunnel down")
    status, answer = _cbor_call(server, "DescribeAlarms", {"AlarmNames": ["vpn-a-tunnel", "nope"], "MaxRecords": 100})
    alarms = answer.get("MetricAlarms", []) if isinstance(answer, dict) else []
    aws_like = (
        status == 200
        and [a.get("AlarmName") for a in alarms] == ["vpn-a-tunnel"]
        and alarms[0].get("StateValue") == "ALARM"
        and alarms[0].get("StateReason") == "tunnel down"
        and isinstance(alarms[0].get("StateUpdatedTimestamp"), Tagged)
        and alarms[0]["StateUpdatedTimestamp"].tag == 1
        and isinstance(alarms[0].get("Threshold"), float)
    )
    aws_or_gap(server, aws_like, "DescribeAlarms in Smithy RPC v2 CBOR")
    if server.patched:
        when = datetime.datetime.fromtimestamp(alarms[0]["StateUpdatedTimestamp"].value, datetime.timezone.utc)
        assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600


def test_15_cbor_errors_carry_their_type(emu: Any) -> None:
    status, answer = _cbor_call(emu, "SetAlarmState", {"AlarmName": "missing", "StateValue": "OK", "StateReason": "x"})
    assert status == 404 or status == 400, (status, answer)
    assert isinstance(answer, dict) and "ResourceNotFound" in answer.get("__type", ""), answer


def test_15_describe_alarms_takes_at_most_100_names(server: Any) -> None:
    names = [f"tunnel-{n}" for n in range(101)]
    status, answer = _cbor_call(server, "DescribeAlarms", {"AlarmNames": names})
    refused = status == 400 and isinstance(answer, dict) and answer.get("__type") == "ValidationError"
    # Plain moto does not even answer the protocol; patched, the limit holds,
    # and 100 names are fine.
    aws_or_gap(server, refused, "DescribeAlarms refuses 101 AlarmNames")
    if server.patched:
        status, _ = _cbor_call(server, "DescribeAlarms", {"AlarmNames": names[:100], "MaxRecords": 100})
        assert status == 200
        status, answer = _cbor_call(server, "DescribeAlarms", {"MaxRecords": 101})
        assert status == 400 and answer.get("__type") == "ValidationError", answer
