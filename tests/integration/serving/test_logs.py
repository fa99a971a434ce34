"""Instance output on one machine (serving/logs.py): each line an instance prints is stamped with
its instance and version in its revision's file, nothing is lost when the instance exits, a failed
start still explains itself, and the files are rotated within PAR_LOG_MAX_BYTES."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from serving import Controller, LogQuery, RevisionSpec, ServingSettings, read_logs
from tests.support.apkgs import demo_variant

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRINTS = (
    "import os\nimport sys\n\n\ndef handler(context):\n"
    "    for n in range(int(context.get('lines', 1))):\n"
    "        print(f\"{context.get('say', 'hello')} {n} \" + 'x' * int(context.get('pad', 0)), flush=True)\n"
    "    print('to stderr', file=sys.stderr, flush=True)\n"
    "    return {'pid': os.getpid()}\n"
)


@pytest.fixture(scope="module")
def printing_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_variant(tmp_path_factory.mktemp("printing"), "printer", "0.1.0", PRINTS)


async def _serve(controller: Controller, apkg: Path) -> None:
    sha = hashlib.sha256(apkg.read_bytes()).hexdigest()  # noqa: ASYNC240 - a few KiB
    folder = await controller.preparer.prepare(sha, apkg, lambda _line: None)
    await controller.apply("default", "printer", [RevisionSpec("default", "printer", "0.1.0", folder)],
                           {"0.1.0": 100})


async def _invoke(controller: Controller, **body: object) -> None:
    async with controller.activator.acquire("default", "printer") as url, httpx.AsyncClient(timeout=60) as c:
        response = await c.post(f"{url}/invoke", json=body)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("prefork", [True, False], ids=["forked", "spawned"])
async def test_lines_carry_instance_and_version(tmp_path: Path, printing_apkg: Path, prefork: bool) -> None:
    settings = ServingSettings(data_dir=tmp_path, prefork=prefork, scale_to_zero_after=30)
    async with Controller(settings) as controller:
        await _serve(controller, printing_apkg)
        await _invoke(controller, say="hi", lines=3)
        [revision] = controller.status("default", "printer").revisions  # type: ignore[union-attr]
        [instance] = revision.instances
    records = read_logs(tmp_path / "logs", LogQuery("default", "printer"))
    said = [r for r in records if r["line"].startswith("hi ")]
    assert [r["line"].strip() for r in said] == ["hi 0", "hi 1", "hi 2"]
    assert {r["version"] for r in said} == {"0.1.0"}
    assert {r["instance"] for r in said} == {instance.id}
    assert instance.id.startswith("printer-")
    assert any(r["line"] == "to stderr" for r in records)
    assert read_logs(tmp_path / "logs", LogQuery("default", "printer", instance="printer-nope")) == []
    assert [r["line"].strip() for r in read_logs(tmp_path / "logs", LogQuery("default", "printer", tail=1))] \
        != []
    assert not list((tmp_path / "logs" / ".pipes").iterdir())  # the FIFO went with its instance


async def test_rotation_bounds_the_files(tmp_path: Path, printing_apkg: Path) -> None:
    settings = ServingSettings(data_dir=tmp_path, scale_to_zero_after=30, log_max_bytes=4096, log_max_files=2)
    async with Controller(settings) as controller:
        await _serve(controller, printing_apkg)
        for _ in range(5):
            await _invoke(controller, say="many", lines=40, pad=100)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir() if p.name.startswith("default.printer."))
    current = "default.printer.0.1.0.log"
    assert files == [current, f"{current}.1", f"{current}.2"]
    assert all((tmp_path / "logs" / f).stat().st_size <= 4096 for f in files)
    kept = read_logs(tmp_path / "logs", LogQuery("default", "printer"))
    assert "to stderr" in [r["line"] for r in kept]  # the newest lines survive rotation
