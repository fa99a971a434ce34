"""Run `wrk` (Debian's package) and read its report: the one parser the benchmark scripts share.

Percentiles are read only from the `Latency Distribution` lines (`--latency`), anchored at the
start of a line: a thread-stats column such as `76.99%` must never be taken for the 99th one.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkReport:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    elapsed_s: float
    non2xx: int
    socket_errors: str | None
    text: str


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(out: str) -> WrkReport:
    """A report from wrk's `--latency` output; ValueError names what is missing."""
    percentiles = {
        pct: _ms(value, unit)
        for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    }
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not (totals and rps and {"50", "99"} <= percentiles.keys()):
        raise ValueError(f"not a wrk --latency report:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return WrkReport(
        rps=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        requests=int(totals.group(1)),
        elapsed_s=_ms(totals.group(2), totals.group(3)) / 1000,
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=errors.group(0) if errors else None,
        text=out,
    )


def run(
    url: str,
    *,
    connections: int,
    duration: float,
    threads: int | None = None,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    timeout_s: float | None = None,
) -> WrkReport:
    """One wrk run against `url` with latency percentiles; raises if wrk fails."""
    cmd = ["wrk", f"-t{threads or min(2, connections)}", f"-c{connections}",
           f"-d{max(1, round(duration))}s", "--latency"]
    if timeout_s is not None:
        cmd += ["--timeout", f"{timeout_s:g}s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", script]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk against {url} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse(done.stdout)
