"""Prometheus metrics of the broker (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BROKER = ["namespace", "broker"]
_TRIGGER = ["namespace", "trigger"]

ACCEPTED = Counter("par_eventing_events_accepted_total", "Events stored by the ingress", _BROKER)
REJECTED = Counter("par_eventing_events_rejected_total", "Ingress requests refused", ["code"])
DELIVERED = Counter("par_eventing_events_delivered_total", "Events a subscriber took", _TRIGGER)
RETRIED = Counter("par_eventing_delivery_retries_total", "Delivery retries", _TRIGGER)
DEAD_LETTERED = Counter("par_eventing_events_dead_lettered_total", "Events dead-lettered", _TRIGGER)
DROPPED = Counter("par_eventing_events_dropped_total", "Failed, no dead-letter sink", _TRIGGER)
FILTER_ERRORS = Counter(
    "par_eventing_filter_errors_total",
    "CESQL filter evaluations that failed (the event did not match), by the spec's error type",
    [*_TRIGGER, "error"],
)
REPLIES = Counter("par_eventing_replies_total", "Reply events put back into the broker", _TRIGGER)
LATENCY = Histogram(
    "par_eventing_delivery_latency_seconds",
    "From the record's Kafka timestamp to the subscriber's 2xx",
    _TRIGGER,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DEAD_LETTERS_STORED = Gauge(
    "par_eventing_dead_letters", "Dead letters in the built-in store, by the Trigger that failed", _TRIGGER)
DEAD_LETTERS_REDRIVEN = Counter(
    "par_eventing_dead_letters_redriven_total", "Dead letters sent again, by outcome (delivered, failed)",
    ["outcome"])
DEAD_LETTERS_PURGED = Counter("par_eventing_dead_letters_purged_total", "Dead letters deleted unsent")
