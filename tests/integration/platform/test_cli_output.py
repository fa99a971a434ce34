"""What `par` prints when a call fails, as a person reads it: one line on stderr with the problem's
code and detail; `--output json` keeps the whole problem body on stdout."""

from __future__ import annotations

import json

from tests.support.platform import ParUp


def test_a_failed_invoke_is_one_line_naming_the_problem(platform: ParUp) -> None:
    failed = platform.cli("invoke", "no-such-agent", "--data", "{}", check=False)
    assert failed.returncode == 1
    assert failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith("Error: unknown_agent: ") and line.endswith("(HTTP 404)"), line

    as_json = platform.cli("invoke", "no-such-agent", "-o", "json", check=False)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["code"] == "unknown_agent"
