"""Behaviour 14: VPC routes whose destination is a managed prefix list.

``patch_prefix_list_routes`` - moto's CreateRoute drops
``DestinationPrefixListId`` when the target is a network interface (it only
looks the list up for other targets), so the route is stored under no
destination: DescribeRouteTables shows it without ``DestinationPrefixListId``
and ReplaceRoute / DeleteRoute with ``DestinationPrefixListId`` do not find
it (``InvalidParameterValue`` "There is no route defined for 'pl-…'"). An
unknown prefix list is accepted. AWS: a route's destination is one of
``DestinationCidrBlock``, ``DestinationIpv6CidrBlock`` or
``DestinationPrefixListId``, for any target
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateRoute.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceRoute.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Route.html);
"Prefix lists" as route destinations,
https://docs.aws.amazon.com/vpc/latest/userguide/managed-prefix-lists.html;
an unknown list is ``InvalidPrefixListID.NotFound``
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).

Fixed: the list is kept whatever the target, the route is stored (and so
found by ReplaceRoute / DeleteRoute) under it, and an unknown list is
refused.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.route_tables import Route, RouteBackend
from moto.ec2.utils import generate_route_id

from ._common import _bound_arguments, _patch


def patch_prefix_list_routes() -> None:
    """Behaviour 14: prefix-list routes keep their destination for every
    target."""
    original_create = RouteBackend.create_route

    @functools.wraps(original_create)
    def create_route(self: Any, *args: Any, **kwargs: Any) -> Route:
        arguments = _bound_arguments(original_create, self, *args, **kwargs)
        list_id = arguments.get("destination_prefix_list_id")
        prefix_list = None
        if list_id:
            prefix_list = self.managed_prefix_lists.get(list_id)
            if prefix_list is None:
                raise EC2ClientError(
                    "InvalidPrefixListID.NotFound", f"The prefix list ID '{list_id}' does not exist"
                )
        route = original_create(self, *args, **kwargs)
        if prefix_list is not None and route.destination_prefix_list is None:
            table = route.route_table
            table._routes.pop(route.id, None)
            route.destination_prefix_list = prefix_list
            route.id = generate_route_id(table.id, None, None, prefix_list.id)
            table._routes[route.id] = route
        return route

    _patch(RouteBackend, "create_route", create_route)
