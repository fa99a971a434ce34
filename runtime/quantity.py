"""Kubernetes resource quantities, as `kn` and Knative Services write them: `256Mi`, `1G`, `500m`.

Binary suffixes Ki Mi Gi Ti Pi Ei, decimal k M G T P E, `m` (milli), or a plain number; a bad
value raises ValueError naming what is accepted.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"),
    **{s: Decimal(10) ** (3 * i) for i, s in enumerate("kMGTPE", start=1)},
    **{f"{s}i": Decimal(2) ** (10 * i) for i, s in enumerate("KMGTPE", start=1)},
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$")


def parse(value: str) -> Decimal:
    match = _QUANTITY.match(value.strip())
    if match is None or match.group(2) not in _SUFFIX:
        raise ValueError(f"{value!r} is not a quantity (e.g. 256Mi, 1G, 500m, 2)")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity (e.g. 256Mi, 1G, 500m, 2)") from None


def to_bytes(value: str) -> int:
    """A memory quantity in bytes (`256Mi` -> 268435456)."""
    return int(parse(value))


def to_millicores(value: str) -> int:
    """A CPU quantity in millicores (`500m` -> 500, `1.5` -> 1500)."""
    return int(parse(value) * 1000)
