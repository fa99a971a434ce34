"""W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage, carried across every hop.

One request is followed across the gateway, serving, the agent, the broker and the agents its
events reach by one `trace-id`; each hop that acts on it gets its own `parent-id` (span id). The
parsing rules are the W3C Trace Context Recommendation's (level 1, with level 2's forward
compatibility): version `ff` is invalid; version `00` is exactly 55 characters; a later version is
read by its first four fields when a `-` or nothing follows them; hex is lowercase; an all-zero
trace-id or parent-id is invalid. An invalid `traceparent` starts a new trace and drops the
`tracestate` that came with it. `tracestate` and `baggage` are passed on as they came.

The current context lives in a context variable: the runtime sets it for each request it serves,
so a handler (and `runtime.sdk`'s helpers: `emit`, `aemit`, `trace_headers`) carries it without code.
Hand-written rather than `opentelemetry-api`'s propagators: the gateway parses this on every
request, and these few string checks cost a fraction of that API's context machinery.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
SAMPLED = 0x01

_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_getrandbits = random.getrandbits
_FUTURE = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?")


class TraceContext:
    """One hop's context (treat as immutable). A plain slotted class rather than a frozen
    dataclass: the gateway makes one per request, and this builds in a third of the time."""

    __slots__ = ("baggage", "flags", "span_id", "trace_id", "tracestate")

    def __init__(
        self, trace_id: str, span_id: str, flags: int = SAMPLED, tracestate: str | None = None,
        baggage: str | None = None,
    ) -> None:
        self.trace_id = trace_id  # 32 lowercase hex
        self.span_id = span_id  # 16 lowercase hex: the parent-id this context is passed on with
        self.flags = flags
        self.tracestate = tracestate
        self.baggage = baggage

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TraceContext) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TraceContext({self.traceparent!r}, tracestate={self.tracestate!r}, baggage={self.baggage!r})"

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self) -> TraceContext:
        """The same trace with a new span id: this hop's own span, the parent of the next."""
        return TraceContext(self.trace_id, new_span_id(), self.flags, self.tracestate, self.baggage)

    def with_tracestate(self, tracestate: str | None) -> TraceContext:
        return TraceContext(self.trace_id, self.span_id, self.flags, tracestate, self.baggage)

    def headers(self) -> dict[str, str]:
        """The HTTP headers (also the CloudEvents Distributed Tracing attributes, minus baggage)."""
        out = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            out[TRACESTATE] = self.tracestate
        if self.baggage:
            out[BAGGAGE] = self.baggage
        return out


# Random ids as OpenTelemetry's SDK makes them (`random.getrandbits`): trace ids need to be unique,
# not secret, and this is several times cheaper than `os.urandom`. All zeros is invalid (W3C).
def new_trace_id() -> str:
    while (value := _getrandbits(128)) == 0:
        pass
    return f"{value:032x}"


def new_span_id() -> str:
    while (value := _getrandbits(64)) == 0:
        pass
    return f"{value:016x}"


def parse_traceparent(value: str | None) -> tuple[str, str, int] | None:
    """(trace-id, parent-id, flags) of a valid `traceparent`, else None."""
    if not value:
        return None
    if len(value) == 55 and value.startswith("00-"):
        trace_id, span_id, flags = value[3:35], value[36:52], value[53:55]
        if value[35] != "-" or value[52] != "-" or not _HEX.issuperset(value[3:35] + span_id + flags):
            return None
    elif not value.startswith(("00", "ff")) and _FUTURE.fullmatch(value):
        trace_id, span_id, flags = value[3:35], value[36:52], value[53:55]
    else:
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, int(flags, 16)


def extract(headers: Mapping[str, str]) -> TraceContext | None:
    """The context a request came with (lowercase header names), or None without a valid one."""
    parsed = parse_traceparent(headers.get(TRACEPARENT))
    if parsed is None:
        return None
    return TraceContext(
        *parsed, tracestate=headers.get(TRACESTATE) or None, baggage=headers.get(BAGGAGE) or None
    )


def extract_raw(raw: Iterable[tuple[bytes, bytes]]) -> TraceContext | None:
    """`extract` over ASGI headers: a repeated `traceparent` is invalid; repeated `tracestate` or
    `baggage` headers are one comma-joined list (RFC 9110 section 5.3)."""
    parents: list[bytes] = []
    states: list[bytes] = []
    baggage: list[bytes] = []
    for name, value in raw:
        if name == b"traceparent":
            parents.append(value)
        elif name == b"tracestate":
            states.append(value)
        elif name == b"baggage":
            baggage.append(value)
    if len(parents) != 1:
        return None
    parsed = parse_traceparent(parents[0].decode("latin-1"))
    if parsed is None:
        return None
    return TraceContext(
        *parsed,
        tracestate=b",".join(states).decode("latin-1") or None,
        baggage=b",".join(baggage).decode("latin-1") or None,
    )


def extract_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> TraceContext | None:
    """`extract_raw` over gRPC metadata (lowercase keys; binary `-bin` values never match)."""
    return extract_raw(
        (key.encode("latin-1"), value.encode("latin-1"))
        for key, value in metadata or ()
        if isinstance(value, str)
    )


def sample(trace_id: str, ratio: float) -> bool:
    """OpenTelemetry's TraceIdRatioBased decision: the trace-id's low 64 bits under ratio * 2**64."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return int(trace_id[16:], 16) < int(ratio * (1 << 64))


def continue_or_start(incoming: TraceContext | None, ratio: float = 1.0) -> TraceContext:
    """This hop's context: a child of the caller's (its sampling decision kept: parent-based), or
    a new trace sampled by `ratio`."""
    if incoming is not None:
        return incoming.child()
    ids = f"{_getrandbits(192):048x}"  # one draw for both ids (the gateway does this per request)
    trace_id, span_id = ids[:32], ids[32:]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        trace_id, span_id = new_trace_id(), new_span_id()
    return TraceContext(trace_id, span_id, SAMPLED if ratio >= 1.0 or sample(trace_id, ratio) else 0)


_current: ContextVar[TraceContext | None] = ContextVar("par_trace_context", default=None)


def current() -> TraceContext | None:
    """The trace context of the request (or event) being handled, if any."""
    return _current.get()


def set_current(context: TraceContext | None):  # -> contextvars.Token
    return _current.set(context)


def reset_current(token) -> None:
    _current.reset(token)


def current_headers() -> dict[str, str]:
    """Headers that carry the current context on an outbound call ({} outside a traced request)."""
    context = _current.get()
    return context.headers() if context is not None else {}

