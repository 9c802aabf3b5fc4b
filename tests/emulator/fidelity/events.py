"""EventBridge event patterns as AWS matches them (behaviour 12).

lbgp's rules filter CloudTrail ``CreateTags`` / ``DeleteTags`` calls on the
resource ids and tag keys they carry, which CloudTrail puts in *arrays of
objects* (``requestParameters.resourcesSet.items[].resourceId``,
``requestParameters.tagSet.items[].key``). AWS matches a pattern field inside
such an array against every element: "If the value in the event is an array,
then the event pattern matches if the intersection of the event pattern array
and the event array is non-empty"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html),
and EventBridge's matcher, Event Ruler, flattens arrays of objects field by
field while guarding "against a rule matching a set of fields which are in
peer elements of an array" (aws/event-ruler, ``Field.java``): the fields of
one sub-pattern must all match inside the *same* element. moto 5.2.5 stops
flattening at the first array, so a pattern on a field inside an array of
objects never matches (every tag event would be dropped).

``TestEventPattern`` ("Tests whether the specified event pattern matches the
provided event",
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html)
is not implemented by moto (an empty answer). It is now: ``{"Result": bool}``;
an invalid pattern is ``InvalidEventPatternException``; an event that is not
JSON or lacks one of the fields the page calls mandatory (``id``,
``account``, ``source``, ``time``, ``region``, ``resources``,
``detail-type``) is ``ValidationException``.
"""

from __future__ import annotations

import json
from typing import Any

from ._common import _patch

# The fields TestEventPattern requires of an event.
_MANDATORY_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def _leaf_values(value: Any) -> list[Any]:
    """The scalars of a leaf: arrays (of arrays) flatten; objects hold no
    value at this path (their fields are deeper paths)."""
    if isinstance(value, list):
        return [v for item in value for v in _leaf_values(item)]
    if isinstance(value, dict):
        return []
    return [value]


def pattern_matches(node: Any, pattern: dict[str, Any]) -> bool:
    """Whether ``node`` (an event, or a part of one) matches ``pattern`` as
    EventBridge matches it."""
    from moto.events.models import UNDEFINED, EventPattern

    if isinstance(node, list):
        # An array of objects: one element must match the whole sub-pattern.
        elements = [e for e in node if isinstance(e, (dict, list))]
        return any(pattern_matches(e, pattern) for e in elements) or (
            not elements and pattern_matches(UNDEFINED, pattern)
        )
    fields = node if isinstance(node, dict) else {}
    for key, sub in pattern.items():
        if key == "$or":
            ok = any(pattern_matches(node, p) for p in sub)
        elif isinstance(sub, dict):
            ok = pattern_matches(fields.get(key, UNDEFINED), sub)
        elif isinstance(sub, list):
            values = _leaf_values(fields[key]) if key in fields else []
            if key in fields and not isinstance(fields[key], (list, dict)):
                item: Any = fields[key]
            else:
                item = values if values else UNDEFINED
            ok = EventPattern(None, {})._does_item_match_filters(item, sub)
        else:
            ok = False
        if not ok:
            return False
    return True


def patch_event_patterns() -> None:
    """Behaviour 12: patterns match inside arrays of objects; TestEventPattern."""
    from moto.events.exceptions import InvalidEventPatternException
    from moto.events.models import EventPattern, EventPatternParser
    from moto.events.responses import EventsHandler

    def matches_event(self: Any, event: Any) -> bool:
        if not self._pattern:
            return True
        return pattern_matches(json.loads(json.dumps(event)), self._pattern)

    _patch(EventPattern, "matches_event", matches_event)

    def test_event_pattern(self: Any) -> Any:
        raw_pattern = self._get_param("EventPattern")
        raw_event = self._get_param("Event")
        try:
            pattern = EventPatternParser(raw_pattern).parse()
        except InvalidEventPatternException as e:
            return self.error("InvalidEventPatternException", e.message)
        try:
            event = json.loads(raw_event or "")
        except ValueError:
            return self.error("ValidationException", "Parameter Event is not valid.")
        missing = [f for f in _MANDATORY_EVENT_FIELDS if not isinstance(event, dict) or f not in event]
        if missing:
            return self.error("ValidationException", f"Parameter Event is not valid: missing {', '.join(missing)}.")
        result = EventPattern(raw_pattern, pattern).matches_event(event)
        return json.dumps({"Result": bool(result)}), self.response_headers

    _patch(EventsHandler, "test_event_pattern", test_event_pattern)
