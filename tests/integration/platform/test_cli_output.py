"""What `par` prints when a call fails, as a person reads it: one line on stderr with the problem's
code and detail; `--output json` keeps the whole problem body on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_the_banner_shows_every_url_and_par_env_puts_them_in_a_shell(platform: ParUp) -> None:
    banner = platform.output()
    for url in (platform.info["gateway_url"], platform.info["registry_url"] + "/console",
                platform.info["eventing_url"] + "/default/default"):
        assert url in banner, banner
    par = str(Path(sys.executable).with_name("par"))
    assert f"  par        {par}" in banner and f'eval "$({par} env)"' in banner

    exported = platform.cli("env").stdout
    shell = subprocess.run(
        ["bash", "-c", exported + '\necho "$PAR_REGISTRY_URL|$PAR_API_KEY|$PAR_BROKER_URL"; command -v par'],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    said, found = shell.stdout.splitlines()
    assert said == "|".join([platform.info["registry_url"], platform.admin_key,
                             platform.info["eventing_url"] + "/default/default"])
    assert found == par

