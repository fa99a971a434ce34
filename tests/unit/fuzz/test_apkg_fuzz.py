"""Any bytes given as a package — random, a real package cut short or with bytes flipped, a ZIP
with hostile member names — are refused with an `ApkgError` naming the cause, or read: never
another exception, and nothing is written outside the extraction folder."""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
import zipfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from runtime.apkg import ApkgError, extract
from tests.support.apkgs import DEMO_AGENT, zip_folder
from tests.support.fuzzing import bounded

BOUNDED = bounded(300)
_DEMO = zip_folder(DEMO_AGENT, Path(tempfile.mkdtemp(prefix="par-fuzz-")) / "demo.apkg").read_bytes()
NAMES = st.one_of(
    st.sampled_from(["agent.yaml", "src/main.py", "../escape.py", "/abs.py", "a/../../b", "dist/", "C:\\x",
                     "src/\x00.py", "./agent.yaml", "a" * 300]),
    st.text(min_size=1, max_size=40),
)


def _refused_or_read(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        package, into = Path(tmp) / "p.apkg", Path(tmp) / "out" / "x"
        package.write_bytes(data)
        try:
            extract(package, into)
        except ApkgError as refused:
            assert refused.code and str(refused)
        outside = {p for p in Path(tmp).rglob("*")} - {package} - set(into.parent.rglob("*")) - {into.parent}
        assert not outside, f"written outside the extraction folder: {outside}"


@BOUNDED
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _refused_or_read(data)


@BOUNDED
@given(st.integers(0, len(_DEMO)), st.lists(st.tuples(st.integers(0, len(_DEMO) - 1), st.integers(0, 255)),
                                              max_size=8))
def test_a_real_package_cut_short_or_with_bytes_flipped(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_DEMO[:cut] if cut < len(_DEMO) else _DEMO)
    for at, byte in flips:
        if at < len(data):
            data[at] = byte
    _refused_or_read(bytes(data))


@BOUNDED
@given(st.lists(st.tuples(NAMES, st.binary(max_size=256)), max_size=6))
def test_zips_with_any_member_names(members: list[tuple[str, bytes]]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the point
        for name, content in members:
            with contextlib.suppress(IndexError, ValueError):  # names zipfile itself cannot write
                zf.writestr(name, content)
    _refused_or_read(buffer.getvalue())
