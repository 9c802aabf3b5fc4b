"""Request-size limits AWS enforces and moto does not (behaviours 6 and 8).

6. DescribeInstanceStatus: "Constraints: Maximum 100 explicitly specified
   instance IDs", and MaxResults "cannot [be specified with] the instance IDs
   parameter in the same request"
   (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceStatus.html).
   Beyond 100 ids AWS answers ``InvalidRequest`` "N exceeds the maximum
   number of instance IDs that can be specificied (100). Please specify
   fewer than 100 instance IDs." (its own spelling; reported in
   bastillion-io/Bastillion-EC2#8 and sensu-plugins/sensu-plugins-aws#195);
   both parameters: ``InvalidParameterCombination`` "The parameter
   instancesSet cannot be used with the parameter maxResults" (what moto
   already answers for DescribeInstances, whose page says the same).
   Filter values: no EC2 API page gives a number; AWS answers
   ``FilterLimitExceeded`` "The maximum number of filter values specified on
   a single call is 200" (DescribeInstances, reported in gjbae1212/gossm#35).
   Enforced on every EC2 call with filters, all filters of the call counted
   together (``filter_value_limit``, default 200, null: none).
8. SNS Publish: the message "must be at most 256 KB in size (262,144 bytes,
   not 262,144 characters)"
   (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html); moto
   counted characters and wrapped AWS's message in another one. Now
   ``InvalidParameter`` "Invalid parameter: Message too long" beyond 262,144
   UTF-8 bytes, message attributes included (their names, types and values
   count: https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html). DynamoDB's 400 KB item limit is already enforced by moto
   (``ValidationException`` "Item size has exceeded the maximum allowed
   size"; UpdateItem: "Item size to update has exceeded the maximum allowed
   size"), a little below AWS's limit (405,000 bytes against 409,600,
   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html):
   left alone.
"""

from __future__ import annotations

import base64
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses._base_response import EC2BaseResponse
from moto.ec2.responses.instances import InstanceResponse

from ._common import _patch, settings

MAX_INSTANCE_STATUS_IDS = 100
SNS_MAX_MESSAGE_BYTES = 262_144


def patch_describe_limits() -> None:
    """Behaviour 6: DescribeInstanceStatus id limit and MaxResults with ids;
    filter values per call."""
    original_status = InstanceResponse.describe_instance_status

    def describe_instance_status(self: Any) -> Any:
        instance_ids = self._get_param("InstanceIds", []) or []
        if len(instance_ids) > MAX_INSTANCE_STATUS_IDS:
            raise EC2ClientError(
                "InvalidRequest",
                f"{len(instance_ids)} exceeds the maximum number of instance IDs that can be "
                f"specificied ({MAX_INSTANCE_STATUS_IDS}). Please specify fewer than "
                f"{MAX_INSTANCE_STATUS_IDS} instance IDs.",
            )
        if instance_ids and self._get_param("MaxResults") not in (None, ""):
            raise EC2ClientError(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            )
        return original_status(self)

    _patch(InstanceResponse, "describe_instance_status", describe_instance_status)

    original_filters = EC2BaseResponse._filters_from_querystring

    def _filters_from_querystring(self: Any) -> dict[str, Any]:
        filters = original_filters(self)
        limit = settings().filter_value_limit
        if limit is not None:
            count = sum(len(values or []) for values in filters.values())
            if count > limit:
                raise EC2ClientError(
                    "FilterLimitExceeded",
                    f"The maximum number of filter values specified on a single call is {limit}",
                )
        return filters

    _patch(EC2BaseResponse, "_filters_from_querystring", _filters_from_querystring)


def message_size(message: str, attributes: dict[str, Any] | None) -> int:
    """UTF-8 bytes of an SNS message and its attributes ("all parts of the
    message attribute, including name, type, and value, are included in the
    message size restriction"; moto keeps a binary value base64-encoded)."""
    size = len(str(message).encode("utf-8"))
    for name, attribute in (attributes or {}).items():
        kind = str(attribute.get("Type", ""))
        value = str(attribute.get("Value", ""))
        raw = len(base64.b64decode(value)) if kind.startswith("Binary") else len(value.encode("utf-8"))
        size += len(name.encode("utf-8")) + len(kind.encode("utf-8")) + raw
    return size


def patch_sns_message_size() -> None:
    """Behaviour 8: SNS Publish counts the message's UTF-8 bytes."""
    from moto.sns.exceptions import InvalidParameterValue
    from moto.sns.models import SNSBackend

    original = SNSBackend.publish

    def publish(self: Any, message: str, *args: Any, **kwargs: Any) -> str:
        phone_number = kwargs.get("phone_number", args[1] if len(args) > 1 else None)
        attributes = kwargs.get("message_attributes", args[3] if len(args) > 3 else None)
        if not phone_number and message_size(message, attributes) > SNS_MAX_MESSAGE_BYTES:
            raise InvalidParameterValue("Invalid parameter: Message too long")
        return original(self, message, *args, **kwargs)

    _patch(SNSBackend, "publish", publish)
