"""Behaviour 16: customer-managed prefix lists as AWS writes them.

``patch_managed_prefix_lists`` - moto 5.2.5's ModifyManagedPrefixList
ignores a stale ``CurrentVersion`` (it silently bases the change on that old
version's entries, dropping whatever changed since), takes any number of
entries, never checks them against ``MaxEntries``, ignores ``MaxEntries``
(no resize), and wipes the list's name when the call carries none;
CreateManagedPrefixList takes any number of entries whatever ``MaxEntries``
says; DescribeRouteTables has no ``route.destination-prefix-list-id`` filter.

AWS (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyManagedPrefixList.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateManagedPrefixList.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRouteTables.html):
"If you specify a current version number that does not match the true
current version number, the request fails" (``PrefixListVersionMismatch``,
as the AWS SDKs and Terraform's provider name it); ``AddEntry.N``,
``RemoveEntry.N`` and ``Entry.N`` take at most 100 items; a list holds at
most ``MaxEntries`` entries; "You cannot modify the entries of a prefix list
and modify the size of a prefix list at the same time"; changing the name
"does not affect the version" (and not naming one keeps it).
The error code for too many entries is not documented: ``InvalidParameterValue``
here.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend
from moto.ec2.models.route_tables import RouteTable

from ._common import _bound_arguments, _patch

#: AWS's limit on the entries one call adds, removes or creates.
ENTRIES_PER_CALL = 100


def _too_many(kind: str, n: int) -> EC2ClientError:
    return EC2ClientError(
        "InvalidParameterValue",
        f"The request has {n} {kind} entries; at most {ENTRIES_PER_CALL} are allowed per request",
    )


def _over_max(list_id: str, n: int, max_entries: int) -> EC2ClientError:
    return EC2ClientError(
        "InvalidParameterValue",
        f"The prefix list {list_id} would have {n} entries, above its maximum of {max_entries}",
    )


def patch_managed_prefix_lists() -> None:
    """Behaviour 16: versions, entry limits and sizes of managed prefix lists."""
    original_create = ManagedPrefixListBackend.create_managed_prefix_list
    original_modify = ManagedPrefixListBackend.modify_managed_prefix_list

    @functools.wraps(original_create)
    def create_managed_prefix_list(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound_arguments(original_create, self, *args, **kwargs)
        entries = arguments.get("entry") or []
        owner = arguments.get("owner_id")
        if owner != "AWS":
            if len(entries) > ENTRIES_PER_CALL:
                raise _too_many("Entry", len(entries))
            max_entries = arguments.get("max_entries")
            if max_entries is not None and len(entries) > int(max_entries):
                raise _over_max("(new)", len(entries), int(max_entries))
        created = original_create(self, *args, **kwargs)
        if created.max_entries is not None:
            created.max_entries = int(created.max_entries)
        return created

    @functools.wraps(original_modify)
    def modify_managed_prefix_list(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound_arguments(original_modify, self, *args, **kwargs)
        list_id = arguments.get("prefix_list_id")
        pl = self.managed_prefix_lists.get(list_id)
        if pl is None:
            raise EC2ClientError("InvalidPrefixListID.NotFound", f"The prefix list ID '{list_id}' does not exist")
        add = arguments.get("add_entry") or []
        remove = arguments.get("remove_entry") or []
        version = arguments.get("current_version")
        if version is not None and int(version) != pl.version:
            raise EC2ClientError(
                "PrefixListVersionMismatch",
                f"The prefix list has the incorrect version number (current {pl.version}, given {version}).",
            )
        for kind, items in (("AddEntry", add), ("RemoveEntry", remove)):
            if len(items) > ENTRIES_PER_CALL:
                raise _too_many(kind, len(items))
        if add or remove:
            current = {e["Cidr"] for e in pl.entries.get(pl.version, [])}
            after = (current - {e["Cidr"] for e in remove}) | {e["Cidr"] for e in add}
            if pl.max_entries is not None and len(after) > int(pl.max_entries):
                raise _over_max(list_id, len(after), int(pl.max_entries))
        name = arguments.get("prefix_list_name") or pl.prefix_list_name
        kwargs_out = dict(arguments)
        kwargs_out.pop("self", None)
        kwargs_out["prefix_list_name"] = name
        return original_modify(self, **kwargs_out)

    _patch(ManagedPrefixListBackend, "create_managed_prefix_list", create_managed_prefix_list)
    _patch(ManagedPrefixListBackend, "modify_managed_prefix_list", modify_managed_prefix_list)
    _patch_resize()
    _patch_route_filter()


def _patch_resize() -> None:
    """``MaxEntries`` in ModifyManagedPrefixList resizes the list (alone)."""
    from moto.ec2.responses.vpcs import VPCs

    original = VPCs.modify_managed_prefix_list

    @functools.wraps(original)
    def modify_managed_prefix_list(self: Any) -> Any:
        max_entries = self._get_param("MaxEntries")
        if max_entries is None:
            return original(self)
        if self._get_param("AddEntries") or self._get_param("RemoveEntries"):
            raise EC2ClientError(
                "InvalidParameterCombination",
                "You cannot modify the entries of a prefix list and modify the size of a prefix list at the same time",
            )
        list_id = self._get_param("PrefixListId")
        pl = self.ec2_backend.managed_prefix_lists.get(list_id)
        if pl is None:
            raise EC2ClientError("InvalidPrefixListID.NotFound", f"The prefix list ID '{list_id}' does not exist")
        held = len(pl.entries.get(pl.version, []))
        if int(max_entries) < held:
            raise _over_max(list_id, held, int(max_entries))
        pl.max_entries = int(max_entries)
        return original(self)

    _patch(VPCs, "modify_managed_prefix_list", modify_managed_prefix_list)


def _patch_route_filter() -> None:
    """DescribeRouteTables' ``route.destination-prefix-list-id`` filter."""
    original = RouteTable.get_filter_value

    @functools.wraps(original)
    def get_filter_value(self: RouteTable, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "route.destination-prefix-list-id":
            return [
                r.destination_prefix_list.id
                for r in self._routes.values()
                if getattr(r, "destination_prefix_list", None) is not None
            ]
        return original(self, filter_name, method_name)

    _patch(RouteTable, "get_filter_value", get_filter_value)
