"""The templates' EventBridge rules, evaluated against every sample event as
EventBridge matches them (TestEventPattern on the patched emulator, see
behaviour 12 in the fidelity package).

Each rule's pattern is read from ``template.yaml`` / ``forwarder.yaml`` (the
execution roles' ``!GetAtt …Arn`` resolved to the example ARNs the samples in
``events/filtered/`` use, ``!Ref MemberRoleName`` to its default
``lbgp-member``), and every EventBridge-shaped sample in ``events/``
is tested against it. ``EXPECTED`` says which samples each rule must let
through; every other sample must be dropped. So a pattern that wakes a
function for noise (an EKS controller tagging instances, another lbgp
function's writes, an instance starting) or misses a real change fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Emulator

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
MANDATORY = ("id", "account", "source", "time", "region", "resources", "detail-type")

# What `!GetAtt <Role>.Arn` stands for in the test (the samples of lbgp's own
# calls use the watcher's).
ROLE_ARNS = {
    role: f"arn:aws:iam::111122223333:role/lbgp-{role}-EXAMPLE"
    for role in ("InjectorRole", "PropagatorRole", "WatcherRole", "ForwarderRole")
}
# What `!Ref MemberRoleName` stands for (the template's default, the role
# lbgp assumes in member accounts; events/filtered/ has one of its calls).
PARAMETERS = {"MemberRoleName": "lbgp-member"}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (``!GetAtt`` …)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def _resolve(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"}:
            resource, attribute = node["Fn::GetAtt"]
            assert attribute == "Arn" and resource in ROLE_ARNS, f"unexpected GetAtt in a pattern: {node}"
            return ROLE_ARNS[resource]
        if set(node) == {"Ref"}:
            assert node["Ref"] in PARAMETERS, f"unexpected Ref in a pattern: {node}"
            return PARAMETERS[node["Ref"]]
        assert not any(k.startswith(("Fn::", "Ref")) for k in node), f"unexpected intrinsic in a pattern: {node}"
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def _rules() -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for template in ("template.yaml", "forwarder.yaml"):
        doc = yaml.load((ROOT / template).read_text(), Loader=_CfnLoader)
        for name, resource in doc["Resources"].items():
            if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource["Properties"]:
                rules[name] = _resolve(resource["Properties"]["EventPattern"])
    return rules


def _samples() -> dict[str, dict[str, Any]]:
    """Every sample shaped like an EventBridge event (TestEventPattern's
    mandatory fields present), by path under events/."""
    found = {}
    for path in sorted(EVENTS.rglob("*.json")):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and all(f in event for f in MANDATORY):
            found[str(path.relative_to(EVENTS))] = event
    return found


def _cloudtrail(*names: str) -> set[str]:
    return {f"cloudtrail/{n}.json" for n in names}


DOWN_STATES = {f"ec2-state/{s}.json" for s in ("stopping", "stopped", "shutting-down", "terminated")}
NETWORK_MANAGER = {
    "networkmanager/TGW-ROUTE-INSTALLED.json",
    "networkmanager/TGW-ROUTE-UNINSTALLED.json",
    "networkmanager/VPC-ATTACHMENT-DELETED.json",
}
INJECTOR_CALLS = _cloudtrail(
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    "ModifyTransitGatewayVpcAttachment",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "CreateRouteTable",
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
)
PROPAGATOR_CALLS = _cloudtrail(
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    "ModifyTransitGatewayVpcAttachment",
    "AcceptTransitGatewayPeeringAttachment",
    "DeleteTransitGatewayPeeringAttachment",
    "RejectTransitGatewayPeeringAttachment",
    "CreateTransitGatewayRoute",
    "DeleteTransitGatewayRoute",
    "EnableTransitGatewayRouteTablePropagation",
    "DisableTransitGatewayRouteTablePropagation",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
)
ALL_CALLS = {p for p in _samples() if p.startswith("cloudtrail/")}
# Every health alarm's state change (the watcher decides which alarms are
# its members').
ALARM_CHANGES = {p for p in _samples() if p.startswith("cloudwatch/")}

EXPECTED: dict[str, set[str]] = {
    "InjectorCloudTrailRule": INJECTOR_CALLS,
    # CreateTags puts lbgp:mesh on a tgw-; DeleteTags takes lbgp:ignore off
    # an rtb-; the router's lbgp: tags are an i- with lbgp: keys (they can
    # make a table a failover table) - all lbgp keys.
    "InjectorTagRule": _cloudtrail("CreateTags", "DeleteTags", "CreateTags-router"),
    "PropagatorCloudTrailRule": PROPAGATOR_CALLS,
    "PropagatorTagRule": _cloudtrail("CreateTags", "DeleteTags", "CreateTags-router"),
    "PropagatorNetworkManagerRule": NETWORK_MANAGER,
    "WatcherCloudTrailRule": _cloudtrail("CreateRoute", "ReplaceRoute", "DeleteRoute"),
    "WatcherTagRule": _cloudtrail("CreateTags-router"),
    "WatcherStateChangeRule": DOWN_STATES,
    "WatcherAlarmRule": ALARM_CHANGES,
    # The forwarder keeps every mesh call, lbgp's own included (the home
    # region's rules drop those by role, the member role's calls in member
    # accounts too), and drops failed calls and tags
    # that are neither on mesh resources nor lbgp keys.
    "CloudTrailForwardRule": ALL_CALLS
    | {"filtered/cloudtrail-ReplaceRoute-by-lbgp.json", "filtered/cloudtrail-CreateRoute-by-member-role.json"},
    "StateChangeForwardRule": DOWN_STATES,
    "NetworkManagerForwardRule": NETWORK_MANAGER,
    "AlarmForwardRule": ALARM_CHANGES,
}


def _test_pattern(emu: Emulator, pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    answer = emu.client("events", "eu-west-1").test_event_pattern(
        EventPattern=json.dumps(pattern), Event=json.dumps(event)
    )
    return bool(answer["Result"])


def test_every_rule_has_expectations() -> None:
    assert set(_rules()) == set(EXPECTED), "a rule without expectations (or expectations without a rule)"
    samples = _samples()
    for rule, wanted in EXPECTED.items():
        missing = wanted - set(samples)
        assert not missing, f"{rule}: no such samples {missing}"


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_rule_matches_exactly_what_it_should(emu: Emulator, rule: str) -> None:
    pattern = _rules()[rule]
    matched = {path for path, event in _samples().items() if _test_pattern(emu, pattern, event)}
    assert matched == EXPECTED[rule], (
        f"{rule}: lets through {sorted(matched - EXPECTED[rule])} it should drop, "
        f"drops {sorted(EXPECTED[rule] - matched)} it should let through"
    )


def test_no_rule_wakes_a_function_for_lbgps_own_writes(emu: Emulator) -> None:
    # Every role of the three functions is excluded from every CloudTrail
    # rule of the home template: a ReplaceRoute made by the watcher wakes
    # neither the injector nor the watcher itself.
    rules = _rules()
    event = json.loads((EVENTS / "filtered/cloudtrail-ReplaceRoute-by-lbgp.json").read_text())
    for role in ("InjectorRole", "PropagatorRole", "WatcherRole"):
        issuer = event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
        issuer["arn"] = ROLE_ARNS[role]
        for name in ("InjectorCloudTrailRule", "WatcherCloudTrailRule"):
            assert not _test_pattern(emu, rules[name], event), f"{name} woken by {role}"
    # A call made with long-term credentials (no session issuer) still passes.
    del event["detail"]["userIdentity"]["sessionContext"]
    assert _test_pattern(emu, rules["WatcherCloudTrailRule"], event)


def test_no_ttl_deletes_a_lease() -> None:
    # A lease item must outlive its expiry: DynamoDB deleting it would
    # restart its fencing token at 1. The table's TTL is off, or on an
    # attribute no lease item carries (adapters/src/store/lease.rs writes
    # `holder`, `token`, `expires_at`, `started_at`, `pending`).
    doc = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    ttl = doc["Resources"]["StateTable"]["Properties"].get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        assert ttl["AttributeName"] not in {"holder", "token", "expires_at", "started_at", "pending"}, ttl
    lease_source = (ROOT / "adapters/src/store/lease.rs").read_text()
    assert '"expires_at"' in lease_source, "the lease's expiry attribute was renamed: update this test"


def _home_rules() -> dict[str, dict[str, Any]]:
    """The rules of template.yaml (the ones that invoke a function)."""
    doc = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    return {n: p for n, p in _rules().items() if n in doc["Resources"]}


def _as_member_call(sample: str, identity: dict[str, Any]) -> dict[str, Any]:
    """The sample ``cloudtrail/<sample>.json`` (a successful call in the home
    account) as the same call made in member account 222222222222 by
    ``identity``, as forwarder.yaml puts it on the home bus (its own
    ``account``)."""
    event = json.loads((EVENTS / f"cloudtrail/{sample}.json").read_text())
    event["account"] = identity["accountId"]
    event["detail"]["recipientAccountId"] = identity["accountId"]
    event["detail"]["userIdentity"] = identity
    return event


def _member_role_identity() -> dict[str, Any]:
    event = json.loads((EVENTS / "filtered/cloudtrail-CreateRoute-by-member-role.json").read_text())
    identity: dict[str, Any] = event["detail"]["userIdentity"]
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert identity["arn"].startswith("arn:aws:sts::222222222222:assumed-role/lbgp-member/")
    assert (issuer["type"], issuer["userName"]) == ("Role", PARAMETERS["MemberRoleName"])
    assert issuer["arn"] == "arn:aws:iam::222222222222:role/lbgp-member"
    return identity


def _human_identity() -> dict[str, Any]:
    """A person's role session in the member account (role Admin)."""
    identity = json.loads(json.dumps(_member_role_identity()))
    identity["principalId"] = "AROAEXAMPLEMEMBERADMN:alice@example.com"
    identity["arn"] = "arn:aws:sts::222222222222:assumed-role/Admin/alice@example.com"
    identity["sessionContext"]["sessionIssuer"].update(
        principalId="AROAEXAMPLEMEMBERADMN", arn="arn:aws:iam::222222222222:role/Admin", userName="Admin"
    )
    return identity


# Every CloudTrail sample's call (CreateRoute and ReplaceRoute, lbgp's route
# writes, among them), by name.
CALLS = sorted(Path(p).stem for p in ALL_CALLS)


@pytest.mark.parametrize("call", CALLS)
def test_no_rule_wakes_a_function_for_lbgps_writes_in_a_member_account(emu: Emulator, call: str) -> None:
    # lbgp writes in a member account through the assumed member role; the
    # member's forwarder puts those calls on the home bus, where no rule may
    # deliver them (a 500-route failover would wake the injector 500 times).
    event = _as_member_call(call, _member_role_identity())
    woken = {name for name, pattern in _home_rules().items() if _test_pattern(emu, pattern, event)}
    assert not woken, f"{call} by the member role wakes {sorted(woken)}"


@pytest.mark.parametrize("call", CALLS)
def test_a_persons_call_in_a_member_account_still_wakes_the_functions(emu: Emulator, call: str) -> None:
    # The same call by a person's role in the member account matches exactly
    # the rules the home account's sample matches (for CreateRoute and
    # ReplaceRoute: the injector's and the watcher's).
    home = _home_rules()
    wanted = {name for name, samples in EXPECTED.items() if f"cloudtrail/{call}.json" in samples} & set(home)
    assert wanted, f"no home rule expects cloudtrail/{call}.json"
    if call in ("CreateRoute", "ReplaceRoute"):
        assert wanted == {"InjectorCloudTrailRule", "WatcherCloudTrailRule"}
    event = _as_member_call(call, _human_identity())
    woken = {name for name, pattern in home.items() if _test_pattern(emu, pattern, event)}
    assert woken == wanted
    # And with long-term credentials (no session issuer) too.
    del event["detail"]["userIdentity"]["sessionContext"]
    woken = {name for name, pattern in home.items() if _test_pattern(emu, pattern, event)}
    assert woken == wanted
