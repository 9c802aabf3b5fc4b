"""Behaviour 18: several accounts - a transit gateway shared through AWS
RAM, and ``sts:AssumeRole`` as AWS decides it.

moto keys its backends by the account of the request's access key (moto's
default ``123456789012`` for unknown keys, the role's account for the keys
AssumeRole hands out) and keeps the accounts wholly apart: a TGW shared
through RAM is invisible to the other account, and AssumeRole answers any
role ARN, existing or not, whatever its trust policy. AWS:

* A TGW is shared through RAM "for VPC attachments across accounts or across
  your organization"; only the owner runs the TGW, attachment and route
  table APIs - "when a transit gateway is shared with you, you cannot
  create, modify, or delete its transit gateway route tables, or its ...
  propagations and associations" (https://docs.aws.amazon.com/vpc/latest/tgw/transit-gateway-share.html);
  the other account "can attach their VPCs to your transit gateway. A user
  from either account can delete the attachment at any time"
  (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-transit-gateways.html,
  https://repost.aws/knowledge-center/transit-gateway-vpc-cross-account).
  Inside an organisation with sharing enabled no invitation is needed
  (https://docs.aws.amazon.com/ram/latest/userguide/working-with-shared-invitations.html).
* The attachment is ``pendingAcceptance`` until the owner accepts or rejects
  it (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AcceptTransitGatewayVpcAttachment.html,
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RejectTransitGatewayVpcAttachment.html)
  unless the TGW has ``AutoAcceptSharedAttachments=enable``
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayOptions.html).
  Both accounts list it, ``TransitGatewayOwnerId`` the TGW's account,
  ``ResourceOwnerId`` / ``VpcOwnerId`` the VPC's
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayAttachment.html,
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayVpcAttachment.html);
  DescribeTransitGatewayAttachments filters ``resource-owner-id`` /
  ``transit-gateway-owner-id``
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeTransitGatewayAttachments.html).
* Not shared: ``InvalidTransitGatewayID.NotFound`` "Transit Gateway tgw-...
  was deleted or does not exist."; a VPC route to a TGW the VPC is not yet
  attached to: ``InvalidTransitGatewayID.NotFound`` "The transitGateway ID
  'tgw-...' does not exist." (terraform-aws-modules/terraform-aws-transit-gateway#144,
  hashicorp/terraform-provider-aws#10025). The shared TGW is listed in the
  other account with the owner's ``OwnerId``
  (terraform-aws-modules/terraform-aws-transit-gateway#19, rebuy-de/aws-nuke#483).
* AssumeRole: the role must exist and its trust policy allow the caller,
  else ``AccessDenied`` (403) "User: <caller> is not authorized to perform:
  sts:AssumeRole on resource: <role>", the same whether or not the role
  exists (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html);
  ``sts:ExternalId`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html)
  and ``aws:PrincipalArn`` - a role session's is the role's ARN
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).

Modelled:

* ``patch_shared_transit_gateways``: an ACTIVE RAM share of a TGW ARN with an
  account id, ``arn:aws:iam::<id>:root``, the owner's organisation or one of
  its OUs makes the TGW visible to that account in the share's region, at
  once (no invitations: moto has none). CreateTransitGatewayVpcAttachment
  there makes one attachment listed in both accounts: the owner's object
  holds state, associations, propagations; the VPC account's view shares
  its state and shows no ``Association`` (what that account sees of the
  owner's tables is **not documented**). ``pendingAcceptance`` until the
  owner's AcceptTransitGatewayVpcAttachment (then behaviour 1's ``pending``
  / ``available`` and the TGW's default association / propagation) or
  RejectTransitGatewayVpcAttachment (``rejected``, still listed); accepted
  at once with ``AutoAcceptSharedAttachments=enable``. The VPC's CIDRs
  propagate into the owner's tables (``tgw_model``); Delete / Modify from
  either account act on the one attachment; creation tags stay in the
  creating account; unsharing leaves attachments alone. Accept / Reject by
  the VPC's account: ``InvalidTransitGatewayAttachmentID.NotFound``; of an
  attachment not ``pendingAcceptance``: ``IncorrectState`` (AWS's codes
  here are **not documented**).
* ``patch_vpc_routes_to_shared_transit_gateways``: CreateRoute / ReplaceRoute
  to a TGW of another account need an ``available`` / ``modifying``
  attachment of the table's VPC to it (moto dropped the target silently),
  else ``InvalidTransitGatewayID.NotFound`` (moto accepted any id); the
  route is ``blackhole`` once that attachment is gone. A same-account TGW
  the VPC is not attached to is still accepted (moto's, unchanged).
* ``patch_shared_transit_gateway_describe``: DescribeTransitGateways lists
  the TGWs shared with the account (with the owner's tags: **not
  documented**); the two owner filters above.
* ``patch_assume_role_trust``: the role must exist in the target account's
  IAM and its trust policy allow ``sts:AssumeRole`` to the caller:
  ``Principal`` ``"*"`` or ``{"AWS": ...}`` (account id, ``...:root``, role
  ARN = its sessions, session ARN, user ARN); ``Deny`` wins; ``Condition``
  with String* / Arn* operators (``...IfExists`` too) and ``Null`` on
  ``sts:ExternalId``, ``sts:RoleSessionName``, ``aws:PrincipalArn``,
  ``aws:PrincipalAccount``, ``aws:PrincipalOrgID``, ``aws:PrincipalType``;
  another key is absent from the request, another operator fails. The
  caller is the user or role session of its access key; moto's dummy keys
  are the IAM user ``arn:aws:iam::<account>:user/moto`` (GetCallerIdentity
  calls them ``user/moto`` too). The caller's own permissions (identity policies, SCPs) are not
  checked. Refused: ``AccessDenied``, 403, STS's XML error shape.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import urllib.parse
import uuid
from typing import Any

from werkzeug.exceptions import HTTPException

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    DuplicateTransitGatewayAttachmentError,
    EC2ClientError,
    InvalidTransitGatewayID,
)
from moto.ec2.models.route_tables import Route, RouteBackend
from moto.ec2.models.transit_gateway import TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachmentBackend,
    TransitGatewayVpcAttachment,
)
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponse,
)

from ._common import _bound_arguments, _patch, set_phases, settings
from .consistency import TICKS
from .tgw_model import _associate, _associated_table_id, _attachment_or_error

# Attachment states in which a VPC may route to a transit gateway of another
# account (and its routes toward it are active).
ROUTABLE_STATES = frozenset({"available", "modifying"})
# Attachment states that no longer count as "the VPC is attached".
GONE_STATES = frozenset({"deleting", "deleted", "rejected", "rejecting", "failed", "failing"})

_TGW_ARN = re.compile(r"^arn:(aws[\w-]*):ec2:([\w-]+):(\d{12}):transit-gateway/(tgw-[0-9a-f]+)$")
_ORG_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:organization/(o-\w+)$")
_OU_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:ou/(o-\w+)/(ou-[\w-]+)$")
_ACCOUNT_ROOT = re.compile(r"^(?:(\d{12})|arn:aws[\w-]*:iam::(\d{12}):root)$")
_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:.*/)?[\w+=,.@-]+$")


# --------------------------------------------------------------------------- #
# Organisations and RAM shares
# --------------------------------------------------------------------------- #
def _organization_of(account_id: str) -> Any:
    """The moto organisations backend of the organisation ``account_id``
    belongs to (its management account's), or None."""
    from moto.organizations.models import organizations_backends

    if account_id in organizations_backends.master_accounts:
        master, partition = organizations_backends.master_accounts[account_id]
        return organizations_backends[master][partition]
    if account_id in organizations_backends:
        for backend in organizations_backends[account_id].values():
            if backend.org is not None:
                return backend
    return None


def _org_id_of(account_id: str) -> str | None:
    backend = _organization_of(account_id)
    return backend.org.id if backend is not None and backend.org is not None else None


def _in_ou(org: Any, account_id: str, ou_id: str) -> bool:
    parents = {ou.id: getattr(ou, "parent_id", None) for ou in org.ou}
    account = next((a for a in org.accounts if a.id == account_id), None)
    node = getattr(account, "parent_id", None)
    seen: set[str] = set()
    while node and node not in seen:
        if node == ou_id:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def _principal_covers(share: Any, account_id: str) -> bool:
    """Whether one of a RAM share's principals is (or contains) ``account_id``."""
    for principal in share.principals:
        root = _ACCOUNT_ROOT.match(principal)
        if root:
            if account_id in root.groups():
                return True
            continue
        org_match = _ORG_ARN.match(principal) or _OU_ARN.match(principal)
        if not org_match:
            continue  # IAM users / roles, service principals: not for TGWs
        org = _organization_of(share.owning_account_id)
        if org is None or org.org is None or org.org.id != org_match.group(1):
            continue
        members = {a.id for a in org.accounts}
        if account_id not in members:
            continue
        if _ORG_ARN.match(principal) or _in_ou(org, account_id, org_match.group(2)):
            return True
    return False


def shared_transit_gateways(backend: Any) -> list[Any]:
    """The transit gateways of other accounts, in ``backend``'s region, that
    an active RAM share shares with ``backend``'s account."""
    from moto.ec2.models import ec2_backends
    from moto.ram.models import ram_backends

    found: dict[str, Any] = {}
    for owner_id, region, ram in list(ram_backends.iter_backends()):
        if region != backend.region_name or owner_id == backend.account_id:
            continue
        for share in ram.resource_shares:
            if share.status != "ACTIVE" or not _principal_covers(share, backend.account_id):
                continue
            for arn in share.resource_arns:
                match = _TGW_ARN.match(arn)
                if not match or match.group(2) != region or match.group(3) != owner_id:
                    continue
                tgw = ec2_backends[owner_id][region].transit_gateways.get(match.group(4))
                if tgw is not None and tgw.state not in ("deleting", "deleted"):
                    found[tgw.id] = tgw
    return [found[k] for k in sorted(found)]


def shared_transit_gateway(backend: Any, transit_gateway_id: str) -> Any:
    return next((t for t in shared_transit_gateways(backend) if t.id == transit_gateway_id), None)


# --------------------------------------------------------------------------- #
# The two sides of a cross-account VPC attachment
# --------------------------------------------------------------------------- #
class SharedTgwVpcAttachment(TransitGatewayVpcAttachment):
    """A VPC attachment to a shared transit gateway, as its owner holds it:
    in the owner's backend (associations, propagations, state), the VPC in
    ``vpc_backend`` (another account's)."""

    __module__ = "moto.ec2.lbgp_fidelity"  # moto's model registry keys on it

    def __init__(
        self,
        owner: Any,
        transit_gateway: Any,
        vpc_backend: Any,
        vpc_id: str,
        subnet_ids: list[str],
        options: dict[str, str] | None,
    ) -> None:
        super().__init__(owner, transit_gateway=transit_gateway, vpc_id=vpc_id, subnet_ids=subnet_ids, options=options)
        self.vpc_backend = vpc_backend
        self.resource_owner_id = vpc_backend.account_id

    @property
    def transit_gateway_owner_id(self) -> str:
        return self.ec2_backend.account_id


def _delegate(name: str) -> property:
    return property(
        lambda self: getattr(self._primary, name),
        lambda self, value: setattr(self._primary, name, value),
    )


class VpcOwnerSideAttachment(TransitGatewayVpcAttachment):
    """The VPC account's view of a :class:`SharedTgwVpcAttachment`: same id,
    state, VPC, subnets and options (shared), its own tags, no association."""

    __module__ = "moto.ec2.lbgp_fidelity"

    def __init__(self, primary: SharedTgwVpcAttachment, backend: Any, tags: dict[str, str] | None) -> None:
        # No super().__init__(): the shared state lives in ``primary``.
        self._primary = primary
        self.ec2_backend = backend
        self.id = primary.id
        self.resource_type = "vpc"
        self._association_data: dict[str, str] = {}
        self.propagation: dict[str, str] = {}
        self.transit_gateway_route_table = None
        self.add_tags(tags or {})

    state = _delegate("state")
    resource_id = _delegate("resource_id")
    vpc_id = _delegate("vpc_id")
    subnet_ids = _delegate("subnet_ids")
    options = _delegate("options")
    transit_gateway_id = _delegate("transit_gateway_id")
    resource_owner_id = _delegate("resource_owner_id")
    owner_id = _delegate("owner_id")
    _created_at = _delegate("_created_at")

    @property
    def transit_gateway_owner_id(self) -> str:
        return self._primary.transit_gateway_owner_id

    @property
    def association(self) -> None:
        return None

    def listed(self) -> bool:
        """Whether the owner still lists the attachment."""
        return self._primary.ec2_backend.transit_gateway_attachments.get(self.id) is self._primary


def drop_stale_views(backend: Any) -> None:
    """Tick: the VPC account stops listing an attachment its owner dropped."""
    attachments = getattr(backend, "transit_gateway_attachments", None)
    if not attachments:
        return
    for attachment_id, attachment in list(attachments.items()):
        if isinstance(attachment, VpcOwnerSideAttachment) and not attachment.listed():
            attachments.pop(attachment_id, None)


def _accept(owner: Any, attachment: SharedTgwVpcAttachment) -> None:
    """Accepted: ``pending`` then ``available`` (behaviour 1's timeline), and
    the TGW's default association / propagation, as for any attachment."""
    set_phases(attachment, [("pending", settings().attachment_pending_seconds), ("available", None)])
    transit_gateway = owner.transit_gateways.get(attachment.transit_gateway_id)
    if transit_gateway is None:
        return
    opts = transit_gateway.options
    association_table = opts.get("AssociationDefaultRouteTableId")
    if (
        opts.get("DefaultRouteTableAssociation") == "enable"
        and association_table in owner.transit_gateways_route_tables
        and _associated_table_id(owner, attachment.id) is None
    ):
        _associate(owner, attachment.id, association_table)
    propagation_table = opts.get("PropagationDefaultRouteTableId")
    if (
        opts.get("DefaultRouteTablePropagation") == "enable"
        and propagation_table in owner.transit_gateways_route_tables
    ):
        owner.enable_transit_gateway_route_table_propagation(attachment.id, propagation_table)


def _incorrect_state(attachment_id: str, state: str) -> EC2ClientError:
    return EC2ClientError(
        "IncorrectState",
        f"Transit Gateway Attachment {attachment_id} is in invalid state {state}.",
    )


def _not_found(attachment_id: str) -> EC2ClientError:
    return EC2ClientError(
        "InvalidTransitGatewayAttachmentID.NotFound",
        f"Transit Gateway Attachment {attachment_id} was deleted or does not exist.",
    )


def _owner_side(backend: Any, attachment_id: str) -> SharedTgwVpcAttachment:
    """The attachment, for an action only the TGW owner may take on it."""
    attachment = _attachment_or_error(backend, attachment_id)
    if isinstance(attachment, VpcOwnerSideAttachment) or attachment.resource_type != "vpc":
        raise _not_found(attachment_id)
    return attachment


def patch_shared_transit_gateways() -> None:
    """Behaviour 18: VPC attachments to a transit gateway shared through RAM
    (see the module docstring)."""
    original_create = TransitGatewayAttachmentBackend.create_transit_gateway_vpc_attachment

    def create_transit_gateway_vpc_attachment(
        self: Any,
        transit_gateway_id: str,
        vpc_id: str,
        subnet_ids: list[str],
        tags: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> Any:
        if transit_gateway_id in self.transit_gateways:
            return original_create(self, transit_gateway_id, vpc_id, subnet_ids, tags=tags, options=options)
        transit_gateway = shared_transit_gateway(self, transit_gateway_id)
        if transit_gateway is None:  # not shared with this account: NotFound, as before
            return original_create(self, transit_gateway_id, vpc_id, subnet_ids, tags=tags, options=options)
        owner = transit_gateway.ec2_backend
        self.get_vpc(vpc_id)  # InvalidVpcID.NotFound
        for existing in owner.transit_gateway_attachments.values():
            if (
                existing.resource_type == "vpc"
                and existing.transit_gateway_id == transit_gateway_id
                and existing.resource_id == vpc_id
                and existing.state not in GONE_STATES
            ):
                raise DuplicateTransitGatewayAttachmentError(transit_gateway_id)
        primary = SharedTgwVpcAttachment(owner, transit_gateway, self, vpc_id, subnet_ids, options)
        owner.transit_gateway_attachments[primary.id] = primary
        view = VpcOwnerSideAttachment(primary, self, tags)
        self.transit_gateway_attachments[view.id] = view
        if transit_gateway.options.get("AutoAcceptSharedAttachments") == "enable":
            _accept(owner, primary)
        else:
            set_phases(primary, [("pendingAcceptance", None)])
        return view

    _patch(
        TransitGatewayAttachmentBackend,
        "create_transit_gateway_vpc_attachment",
        create_transit_gateway_vpc_attachment,
    )

    def accept_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        attachment = _owner_side(self, transit_gateway_attachment_id)
        if attachment.state != "pendingAcceptance":
            raise _incorrect_state(transit_gateway_attachment_id, attachment.state)
        _accept(self, attachment)
        return attachment

    def reject_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        attachment = _owner_side(self, transit_gateway_attachment_id)
        if attachment.state != "pendingAcceptance":
            raise _incorrect_state(transit_gateway_attachment_id, attachment.state)
        set_phases(attachment, [("rejected", None)])
        return attachment

    TransitGatewayAttachmentBackend.accept_transit_gateway_vpc_attachment = accept_transit_gateway_vpc_attachment  # type: ignore[attr-defined]
    TransitGatewayAttachmentBackend.reject_transit_gateway_vpc_attachment = reject_transit_gateway_vpc_attachment  # type: ignore[attr-defined]

    def accept_response(self: Any) -> ActionResult:
        attachment = self.ec2_backend.accept_transit_gateway_vpc_attachment(
            self._get_param("TransitGatewayAttachmentId")
        )
        return ActionResult({"TransitGatewayVpcAttachment": attachment})

    def reject_response(self: Any) -> ActionResult:
        attachment = self.ec2_backend.reject_transit_gateway_vpc_attachment(
            self._get_param("TransitGatewayAttachmentId")
        )
        return ActionResult({"TransitGatewayVpcAttachment": attachment})

    _patch(TgwAttachmentResponse, "accept_transit_gateway_vpc_attachment", accept_response)
    _patch(TgwAttachmentResponse, "reject_transit_gateway_vpc_attachment", reject_response)

    original_delete = TransitGatewayAttachmentBackend.delete_transit_gateway_vpc_attachment

    def delete_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        attachment = self.transit_gateway_attachments.get(transit_gateway_attachment_id)
        if isinstance(attachment, VpcOwnerSideAttachment):
            # Either account may delete it: it is the owner's attachment.
            attachment._primary.ec2_backend.delete_transit_gateway_vpc_attachment(transit_gateway_attachment_id)
            drop_stale_views(self)
            return attachment
        result = original_delete(self, transit_gateway_attachment_id)
        if isinstance(result, SharedTgwVpcAttachment):
            drop_stale_views(result.vpc_backend)
        return result

    _patch(
        TransitGatewayAttachmentBackend,
        "delete_transit_gateway_vpc_attachment",
        delete_transit_gateway_vpc_attachment,
    )

    original_modify = TransitGatewayAttachmentBackend.modify_transit_gateway_vpc_attachment

    def modify_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str, *args: Any, **kwargs: Any) -> Any:
        attachment = self.transit_gateway_attachments.get(transit_gateway_attachment_id)
        if isinstance(attachment, VpcOwnerSideAttachment):
            attachment._primary.ec2_backend.modify_transit_gateway_vpc_attachment(
                transit_gateway_attachment_id, *args, **kwargs
            )
            return attachment
        return original_modify(self, transit_gateway_attachment_id, *args, **kwargs)

    _patch(
        TransitGatewayAttachmentBackend,
        "modify_transit_gateway_vpc_attachment",
        modify_transit_gateway_vpc_attachment,
    )

    TICKS.append(drop_stale_views)


# --------------------------------------------------------------------------- #
# VPC routes toward a transit gateway of another account
# --------------------------------------------------------------------------- #
def _attachment_to(backend: Any, vpc_id: str, transit_gateway_id: str) -> Any:
    """The VPC account's view of its VPC's attachment to another account's
    transit gateway, if any is still there."""
    for attachment in backend.transit_gateway_attachments.values():
        if (
            isinstance(attachment, VpcOwnerSideAttachment)
            and attachment.transit_gateway_id == transit_gateway_id
            and attachment.vpc_id == vpc_id
            and attachment.listed()
            and attachment.state not in GONE_STATES
        ):
            return attachment
    return None


def _reachable_transit_gateway(backend: Any, route_table_id: str, transit_gateway_id: str) -> Any:
    table = backend.get_route_table(route_table_id)  # InvalidRouteTableID.NotFound
    attachment = _attachment_to(backend, table.vpc_id, transit_gateway_id)
    if attachment is None or attachment.state not in ROUTABLE_STATES:
        raise InvalidTransitGatewayID(transit_gateway_id)  # "The transitGateway ID '…' does not exist"
    owner = attachment._primary.ec2_backend
    transit_gateway = owner.transit_gateways.get(transit_gateway_id)
    if transit_gateway is None:
        raise InvalidTransitGatewayID(transit_gateway_id)
    return transit_gateway


def patch_vpc_routes_to_shared_transit_gateways() -> None:
    """Behaviour 18: VPC routes toward a transit gateway of another account
    the VPC is attached to (see the module docstring)."""
    for name in ("create_route", "replace_route"):
        original = getattr(RouteBackend, name)

        def make(original: Any) -> Any:
            @functools.wraps(original)  # keeps the signature: the other route patches bind it
            def route_write(self: Any, *args: Any, **kwargs: Any) -> Any:
                arguments = _bound_arguments(original, self, *args, **kwargs)
                transit_gateway_id = arguments.get("transit_gateway_id")
                if not transit_gateway_id or transit_gateway_id in self.transit_gateways:
                    return original(self, *args, **kwargs)
                transit_gateway = _reachable_transit_gateway(self, arguments["route_table_id"], transit_gateway_id)
                route = original(self, *args, **kwargs)
                route.transit_gateway = transit_gateway
                return route

            return route_write

        _patch(RouteBackend, name, make(original))

    previous_state = Route.__dict__["state"]

    def state(self: Route) -> str:
        transit_gateway = self.transit_gateway
        backend = self.route_table.ec2_backend
        if transit_gateway is not None and transit_gateway.ec2_backend is not backend:
            attachment = _attachment_to(backend, self.route_table.vpc_id, transit_gateway.id)
            alive = transit_gateway.ec2_backend.transit_gateways.get(transit_gateway.id) is transit_gateway
            if alive and attachment is not None and attachment.state in ROUTABLE_STATES:
                return "active"
            return "blackhole"
        return previous_state.fget(self)

    _patch(Route, "state", property(state))


# --------------------------------------------------------------------------- #
# Describes
# --------------------------------------------------------------------------- #
def patch_shared_transit_gateway_describe() -> None:
    """Behaviour 18: DescribeTransitGateways lists the transit gateways
    shared with the account; DescribeTransitGatewayAttachments' owner
    filters."""
    original_tgws = TransitGatewayBackend.describe_transit_gateways

    def describe_transit_gateways(self: Any, filters: Any, transit_gateway_ids: list[str] | None) -> list[Any]:
        found = list(original_tgws(self, filters, transit_gateway_ids))
        by_owner: dict[int, tuple[Any, list[str]]] = {}
        for tgw in shared_transit_gateways(self):
            if transit_gateway_ids and tgw.id not in transit_gateway_ids:
                continue
            by_owner.setdefault(id(tgw.ec2_backend), (tgw.ec2_backend, []))[1].append(tgw.id)
        for owner, ids in by_owner.values():
            if ids:  # never an empty id list: moto would answer every TGW
                found.extend(original_tgws(owner, filters, ids))
        return found

    _patch(TransitGatewayBackend, "describe_transit_gateways", describe_transit_gateways)

    original_atts = TransitGatewayAttachmentBackend.describe_transit_gateway_attachments
    owner_filters = {
        "resource-owner-id": "resource_owner_id",
        "transit-gateway-owner-id": "transit_gateway_owner_id",
    }

    def describe_transit_gateway_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        filters = dict(filters or {})
        wanted = {name: list(filters.pop(name) or []) for name in list(filters) if name in owner_filters}
        found = original_atts(self, transit_gateways_attachment_ids, filters or None)
        return [
            a
            for a in found
            if all(getattr(a, owner_filters[name], None) in values for name, values in wanted.items())
        ]

    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_attachments",
        describe_transit_gateway_attachments,
    )


# --------------------------------------------------------------------------- #
# sts:AssumeRole
# --------------------------------------------------------------------------- #
class AssumeRoleAccessDenied(HTTPException):
    """STS's ``AccessDenied`` (HTTP 403) in the awsQuery error shape."""

    code = 403

    def __init__(self, caller_arn: str, role_arn: str) -> None:
        super().__init__()
        message = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        self.description = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{_xml_escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "text/xml"), ("X-Amzn-ErrorType", "AccessDenied")]

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self.description or ""


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Caller:
    """Who calls AssumeRole: its account, the ARN AWS names it by in errors
    and session ARNs, and ``aws:PrincipalArn`` (a role session's is the
    role's ARN)."""

    def __init__(self, account: str, arn: str, principal_arn: str, kind: str) -> None:
        self.account = account
        self.arn = arn
        self.principal_arn = principal_arn
        self.kind = kind  # aws:PrincipalType


def _caller(response: Any) -> Caller:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    account = response.current_account
    partition = response.partition
    key = response.get_access_key()
    session = sts_backends[account][partition].get_assumed_role_from_access_key(key)
    if session is not None:
        return Caller(session.account_id, session.arn, session.role_arn, "AssumedRole")
    user = iam_backends[account][partition].get_user_from_access_key_id(key)
    if user is not None:
        return Caller(account, user.arn, user.arn, "User")
    arn = f"arn:{partition}:iam::{account}:user/moto"
    return Caller(account, arn, arn, "User")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _like(value: str, pattern: str, ignore_case: bool = False) -> bool:
    regex = fnmatch.translate(str(pattern).replace("[", "[[]"))
    return re.match(regex, str(value), flags=re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _listed(principal.get("AWS")):
        value = str(value)
        if value == "*":
            return True
        root = _ACCOUNT_ROOT.match(value)
        if root and caller.account in root.groups():
            return True
        if value in (caller.principal_arn, caller.arn):
            return True
    return False


_STRING_OPS = {
    "stringequals": (False, lambda v, p: v == p),
    "stringnotequals": (True, lambda v, p: v == p),
    "stringequalsignorecase": (False, lambda v, p: v.lower() == p.lower()),
    "stringnotequalsignorecase": (True, lambda v, p: v.lower() == p.lower()),
    "stringlike": (False, lambda v, p: _like(v, p)),
    "stringnotlike": (True, lambda v, p: _like(v, p)),
    "arnequals": (False, lambda v, p: v == p),
    "arnnotequals": (True, lambda v, p: v == p),
    "arnlike": (False, lambda v, p: _like(v, p)),
    "arnnotlike": (True, lambda v, p: _like(v, p)),
}


def _condition_holds(operator: str, key: str, patterns: list[Any], context: dict[str, str | None]) -> bool:
    op = operator.lower()
    value = context.get(key.lower())
    if op == "null":
        want_absent = str(patterns[0]).lower() == "true" if patterns else True
        return (value is None) == want_absent
    if_exists = op.endswith("ifexists")
    if if_exists:
        op = op[: -len("ifexists")]
    if op not in _STRING_OPS:
        return False  # an operator not modelled: fail closed
    negated, test = _STRING_OPS[op]
    if value is None:
        return if_exists or negated
    matched = any(test(str(value), str(p)) for p in patterns)
    return not matched if negated else matched


def _conditions_hold(conditions: Any, context: dict[str, str | None]) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return False
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            return False
        for key, patterns in block.items():
            if not _condition_holds(operator, key, _listed(patterns), context):
                return False
    return True


def _acts_on_assume_role(statement: dict[str, Any]) -> bool:
    if "NotAction" in statement:
        return not any(_like("sts:AssumeRole", a, ignore_case=True) for a in _listed(statement["NotAction"]))
    return any(_like("sts:AssumeRole", a, ignore_case=True) for a in _listed(statement.get("Action")))


def _policy(document: Any) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    text = str(document or "")
    for candidate in (text, urllib.parse.unquote(text)):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}


def trust_allows(document: Any, caller: Caller, context: dict[str, str | None]) -> bool:
    """Whether a role's trust policy lets ``caller`` assume it: an ``Allow``
    statement matches and no ``Deny`` does."""
    allowed = False
    for statement in _listed(_policy(document).get("Statement")):
        if not isinstance(statement, dict) or not _acts_on_assume_role(statement):
            continue
        if "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], caller):
                continue
        elif not _principal_matches(statement.get("Principal"), caller):
            continue
        if not _conditions_hold(statement.get("Condition"), context):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        if effect == "allow":
            allowed = True
    return allowed


def patch_assume_role_trust() -> None:
    """Behaviour 18: AssumeRole needs the role and its trust (see the module
    docstring)."""
    from moto.iam.models import iam_backends
    from moto.sts.responses import TokenResponse

    original = TokenResponse.assume_role

    def assume_role(self: Any) -> Any:
        role_arn = str(self._get_param("RoleArn") or "")
        caller = _caller(self)
        match = _ROLE_ARN.match(role_arn)
        role = None
        if match:
            try:
                role = iam_backends[match.group(2)][self.partition].get_role_by_arn(role_arn)
            except Exception:  # moto's NotFoundException: no such role
                role = None
        context = {
            "sts:externalid": self._get_param("ExternalId"),
            "sts:rolesessionname": self._get_param("RoleSessionName"),
            "aws:principalarn": caller.principal_arn,
            "aws:principalaccount": caller.account,
            "aws:principalorgid": _org_id_of(caller.account),
            "aws:principaltype": caller.kind,
        }
        if role is None or not trust_allows(role.assume_role_policy_document, caller, context):
            raise AssumeRoleAccessDenied(caller.arn, role_arn)
        return original(self)

    assume_role.__name__ = original.__name__
    _patch(TokenResponse, "assume_role", assume_role)


__all__ = [
    "patch_shared_transit_gateways",
    "patch_vpc_routes_to_shared_transit_gateways",
    "patch_shared_transit_gateway_describe",
    "patch_assume_role_trust",
    "shared_transit_gateways",
    "trust_allows",
]
