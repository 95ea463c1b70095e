"""Stripe's usage-based billing: meters, the meter events that report usage to them, and
usage threshold alerts, whose crossing is the Event ``billing.alert.triggered``.

    POST /v1/billing/meters         display_name, event_name (one active meter each),
                                    default_aggregation[formula] (count, last, sum),
                                    customer_mapping[event_payload_key] (default
                                    ``stripe_customer_id``) + [type] (by_id),
                                    value_settings[event_payload_key] (default ``value``),
                                    event_time_window (day, hour)
    POST /v1/billing/meter_events   event_name (an active meter's), payload[...] (the
                                    meter's customer key: a customer id; its value key: an
                                    integer, not needed by ``count``), identifier (unique;
                                    generated if absent), timestamp (the past 35 days to 5
                                    minutes ahead; default now)
    POST /v1/billing/alerts         alert_type (usage_threshold), title, usage_threshold[gte]
                                    (> 0), [meter], [recurrence] (one_time), and at most one
                                    filter: [filters][0][type] (customer) + [customer]

The reads are ``api.py``'s, over ``LISTS``: ``GET /v1/billing/meters[/{id}]`` (filter
``status``) and ``GET /v1/billing/alerts[/{id}]`` (filters ``alert_type``, ``meter``);
neither list takes ``created``, as on Stripe. A meter's creation records the Event
``billing.meter.created``; a meter event and an alert's creation record none, as on Stripe.

A meter event brings its customer's usage of the meter (every event of the meter's
``event_name`` for that customer: their values summed, counted, or the latest) up to date,
and each active alert on the meter that watches the customer (its filter names the
customer, or it has none) and has not yet triggered for them triggers once usage reaches
its ``gte``: ``billing.alert.triggered``, about a ``billing.alert_triggered`` (the alert,
the customer, the usage). ``one_time`` is once per customer and alert. Where Stripe
evaluates alerts in the background, minutes later, the sandbox does so in the request,
which therefore is the Event's ``request``. Identifiers stay unique for good, not for
Stripe's 24 hours.
"""

from __future__ import annotations

import time
from typing import Any

from connectors.sandbox.billing.documents import Doc
from connectors.sandbox.billing.errors import StripeError, unknown_parameter
from connectors.sandbox.billing.query import (
    Call,
    Listing,
    Where,
    accept,
    choice,
    integer,
    need,
    needed_integer,
    text,
)
from connectors.sandbox.billing.writes import Writes, found

METER, METER_EVENT, ALERT = "billing.meter", "billing.meter_event", "billing.alert"
TRIGGERED = "billing.alert_triggered"  # stored by "<alert id>/<customer id>": triggered once
FORMULAS = ("count", "last", "sum")
WINDOWS = ("day", "hour")
PAST_S, AHEAD_S = 35 * 86400, 5 * 60
TIMESTAMP = "Timestamp must be within the past 35 days and at most 5 minutes in the future."

PREFIXES = {"mtr_": METER, "alrt_": ALERT}  # what ``expand`` can follow to


def _hash(params: dict[str, Any], name: str, fields: tuple[str, ...] | None) -> dict[str, Any]:
    """A nested parameter (``name[key]``) holding only ``fields`` (None: any key); {} when
    absent."""
    value = params.get(name, {})
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid hash: {name}", param=name)
    for key in value:
        if fields is not None and key not in fields:
            raise unknown_parameter(f"{name}[{key}]")
    return value


def _part(value: dict[str, Any], name: str, key: str) -> Any:
    """``name[key]``, required."""
    full = f"{name}[{key}]"
    return need({full: value.get(key)}, full)


def _only(name: str, value: Any, allowed: str) -> str:
    """A value of an enum with one member (``choice`` words a longer one)."""
    if value != allowed:
        raise StripeError(400, f"Invalid {name}: must be {allowed}", param=name)
    return allowed


def _status(name: str, value: Any) -> Where:
    wanted = choice(name, value, ("active", "inactive"))
    return lambda d: d["status"] == wanted


def _alert_type(name: str, value: Any) -> Where:
    wanted = _only(name, value, "usage_threshold")
    return lambda d: d["alert_type"] == wanted


def _meter(name: str, value: Any) -> Where:
    wanted = text(name, value)
    return lambda d: d["usage_threshold"]["meter"] == wanted


# plural path -> its list
LISTS: dict[str, Listing] = {
    "billing/meters": Listing(METER, {"status": _status}),
    "billing/alerts": Listing(ALERT, {"alert_type": _alert_type, "meter": _meter}),
}


def _watches(alert: Doc, customer: str) -> bool:
    filters = alert["usage_threshold"]["filters"] or []
    return all(f["customer"] == customer for f in filters)


def _usage(meter: Doc, events: list[Doc]) -> int:
    """What ``events`` (the customer's, oldest first) add up to under the meter's formula."""
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        return len(events)
    key = meter["value_settings"]["event_payload_key"]
    if formula == "sum":
        return sum(int(e["payload"][key]) for e in events)
    latest = max(reversed(events), key=lambda e: int(e["timestamp"]))  # the last one reported
    return int(latest["payload"][key])


class UsageWrites:
    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.store = writes.store

    def create_meter(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"display_name", "event_name", "default_aggregation", "customer_mapping",
                        "value_settings", "event_time_window", "expand"})  # fmt: skip
        display_name = text("display_name", need(params, "display_name"))
        event_name = text("event_name", need(params, "event_name"))
        need(params, "default_aggregation")
        aggregation = _hash(params, "default_aggregation", ("formula",))
        formula = _part(aggregation, "default_aggregation", "formula")
        formula = choice("default_aggregation[formula]", formula, FORMULAS)
        customer_key, value_key = "stripe_customer_id", "value"
        mapping = _hash(params, "customer_mapping", ("event_payload_key", "type"))
        if mapping:
            key = _part(mapping, "customer_mapping", "event_payload_key")
            customer_key = text("customer_mapping[event_payload_key]", key)
            _only("customer_mapping[type]", _part(mapping, "customer_mapping", "type"), "by_id")
        settings = _hash(params, "value_settings", ("event_payload_key",))
        if settings:
            key = _part(settings, "value_settings", "event_payload_key")
            value_key = text("value_settings[event_payload_key]", key)
        window = params.get("event_time_window")
        window = None if window is None else choice("event_time_window", window, WINDOWS)
        if self._active_meters(event_name):
            raise StripeError(400, f"An active meter with event_name '{event_name}' already "
                                   "exists.", param="event_name")  # fmt: skip
        now = int(time.time())
        meter: Doc = {
            "id": self.writes.new_id("mtr_"), "object": METER, "created": now,
            "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
            "default_aggregation": {"formula": formula}, "display_name": display_name,
            "event_name": event_name, "event_time_window": window, "livemode": False,
            "status": "active", "status_transitions": {"deactivated_at": None},
            "updated": now, "value_settings": {"event_payload_key": value_key},
        }  # fmt: skip
        self.store.put(METER, meter["id"], meter)
        self.writes.emit("billing.meter.created", meter, call)
        return meter

    def create_meter_event(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"event_name", "payload", "identifier", "timestamp", "expand"})
        event_name = text("event_name", need(params, "event_name"))
        need(params, "payload")
        payload = {key: text(f"payload[{key}]", value)
                   for key, value in _hash(params, "payload", None).items()}  # fmt: skip
        identifier = text("identifier", params["identifier"]) if "identifier" in params else None
        if identifier is not None and self.store.get(METER_EVENT, identifier) is not None:
            raise StripeError(400, f"A meter event with identifier '{identifier}' already "
                                   "exists.", param="identifier")  # fmt: skip
        now = int(time.time())
        at = integer(params, "timestamp", now)
        if at is None or not now - PAST_S <= at <= now + AHEAD_S:
            raise StripeError(400, TIMESTAMP, param="timestamp")
        meters = self._active_meters(event_name)
        if not meters:
            raise StripeError(400, f"No active meter was found for event_name '{event_name}'.",
                              param="event_name")  # fmt: skip
        meter = meters[0]
        customer_key = meter["customer_mapping"]["event_payload_key"]
        customer = found(self.store, "customer", _part(payload, "payload", customer_key),
                         f"payload[{customer_key}]", status=400)["id"]  # fmt: skip
        value_key = meter["value_settings"]["event_payload_key"]
        if meter["default_aggregation"]["formula"] != "count" or value_key in payload:
            value_param = f"payload[{value_key}]"
            needed_integer({value_param: payload.get(value_key)}, value_param)
        event: Doc = {
            "object": METER_EVENT, "created": now, "event_name": event_name,
            "identifier": identifier or self.writes.new_id("mev_"), "livemode": False,
            "payload": payload, "timestamp": at,
        }  # fmt: skip
        self.store.put(METER_EVENT, event["identifier"], event)
        self._trigger_alerts(meter, customer, call)
        return event

    def create_alert(self, params: dict[str, Any], call: Call) -> Doc:
        accept(params, {"alert_type", "title", "usage_threshold", "expand"})
        alert_type = _only("alert_type", need(params, "alert_type"), "usage_threshold")
        title = text("title", need(params, "title"))
        need(params, "usage_threshold")
        name = "usage_threshold"
        threshold = _hash(params, name, ("filters", "gte", "meter", "recurrence"))
        gte = needed_integer({f"{name}[gte]": threshold.get("gte")}, f"{name}[gte]")
        if gte <= 0:
            raise StripeError(400, f"Invalid positive integer: {gte}", param=f"{name}[gte]")
        meter_id = text(f"{name}[meter]", _part(threshold, name, "meter"))
        meter = found(self.store, METER, meter_id, f"{name}[meter]", status=400)
        recurrence = _only(f"{name}[recurrence]", _part(threshold, name, "recurrence"), "one_time")
        alert: Doc = {
            "id": self.writes.new_id("alrt_"), "object": ALERT, "alert_type": alert_type,
            "livemode": False, "status": "active", "title": title,
            "usage_threshold": {"filters": self._filters(threshold.get("filters")),
                                "gte": gte, "meter": meter["id"], "recurrence": recurrence},
        }  # fmt: skip
        self.store.put(ALERT, alert["id"], alert)
        return alert

    def _filters(self, given: Any) -> list[Doc] | None:
        """``usage_threshold[filters]``: none, or one naming a customer."""
        name = "usage_threshold[filters]"
        if given is None:
            return None
        if not isinstance(given, list):
            raise StripeError(400, "Invalid array", param=name)
        if len(given) > 1:
            raise StripeError(400, "You can only specify up to one filter at this time.",
                              param=name)  # fmt: skip
        first = f"{name}[0]"
        entry = _hash({first: given[0]}, first, ("customer", "type"))
        _only(f"{first}[type]", _part(entry, first, "type"), "customer")
        customer_id = text(f"{first}[customer]", _part(entry, first, "customer"))
        customer = found(self.store, "customer", customer_id, f"{first}[customer]", status=400)
        return [{"customer": customer["id"], "type": "customer"}]

    def _active_meters(self, event_name: str) -> list[Doc]:
        return self.store.all(
            METER, lambda d: d["event_name"] == event_name and d["status"] == "active"
        )

    def _trigger_alerts(self, meter: Doc, customer: str, call: Call) -> None:
        """Trigger the meter's alerts that the customer's usage now reaches, once each."""
        alerts = self.store.all(ALERT, lambda d: d["status"] == "active"
                                and d["usage_threshold"]["meter"] == meter["id"]
                                and _watches(d, customer))  # fmt: skip
        if not alerts:
            return
        customer_key = meter["customer_mapping"]["event_payload_key"]
        events = self.store.all(METER_EVENT, lambda d: d["event_name"] == meter["event_name"]
                                and d["payload"].get(customer_key) == customer)  # fmt: skip
        usage = _usage(meter, events)
        for alert in alerts:
            key = f"{alert['id']}/{customer}"
            if usage < alert["usage_threshold"]["gte"] or self.store.get(TRIGGERED, key):
                continue
            triggered: Doc = {"object": TRIGGERED, "alert": alert, "created": int(time.time()),
                         "customer": customer, "livemode": False, "value": usage}  # fmt: skip
            self.store.put(TRIGGERED, key, triggered)
            self.writes.emit("billing.alert.triggered", triggered, call)
