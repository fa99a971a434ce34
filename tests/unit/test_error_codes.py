"""Every error `code` PAR's HTTP APIs can answer is documented in docs/errors.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where codes are written in the source: registry and dead-letter problems, runtime errors, APKG refusals,
# gateway decisions (denials, 401 reasons, JWT failures, key lookups).
PATTERNS = [
    r'\bcode="([a-z_]+)"',
    r'(?:error_response|HandlerFailed)\(\d+, "([a-z_]+)"',
    r'ApkgError\(\s*"([a-z_]+)"',
    r'(?:deny|Decision)\(\d+, "([a-z_]+)"',
    r'_unauthorized\("([a-z_]+)"',
    r'reason = \d+, "([a-z_]+)"',
    r'JwtError\("([a-z_]+)"',
    r'return "([a-z]+_key)"',
]


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for component in ("runtime", "gateway", "registry", "eventing"):
        for path in (ROOT / component).rglob("*.py"):
            text = path.read_text()
            for pattern in PATTERNS:
                found |= set(re.findall(pattern, text))
    return found


def test_every_code_in_the_source_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", (ROOT / "docs" / "errors.md").read_text()))
    codes = _codes_in_source()
    assert {"missing_credentials", "agent_not_found", "handler_error", "zip_slip"} <= codes  # patterns work
    assert codes - documented == set()
