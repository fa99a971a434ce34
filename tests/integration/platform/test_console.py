"""The console in a real browser (Debian's Chromium, headless, through Selenium) against a real
`par up --demo`: sign in with the admin key, see the three demo agents, invoke one, shift its
traffic to a second version, create and revoke a key and see the gateway refuse it.

`PAR_CONSOLE_SCREENSHOTS=docs` writes the pages' screenshots into docs/ (how the ones there
were made); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.up.demo import DEMO_AGENTS
from tests.support.apkgs import ROOT
from tests.support.browser import browser  # noqa: F401 - fixture
from tests.support.platform import ParUp, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParUp]:
    running = ParUp(tmp_path_factory.mktemp("console") / "data").start("--demo")
    try:
        for agent in DEMO_AGENTS:
            running.wait_phase(agent, "ready", timeout=240)
        yield running
    finally:
        running.stop()
        running.kill()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return ROOT / "docs" if os.environ.get("PAR_CONSOLE_SCREENSHOTS") == "docs" else tmp_path


def _wait(driver: Any, condition: Any, timeout: float = 30.0) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The live part is replaced every 2 s: an element found just before is then stale; look again.
    ignored = (StaleElementReferenceException,)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(condition)


def _text(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def _sign_in(driver: Any, console: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{console}/agents")
    _wait(driver, lambda d: d.current_url.endswith("/console/login"))  # nothing without a key
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, lambda d: d.current_url.endswith("/console/agents"))


def _screenshot(driver: Any, path: Path) -> None:
    driver.execute_script("window.scrollTo(0, 0)")  # WebDriver's own script: the page's CSP does not apply
    driver.save_screenshot(str(path))


def _click(driver: Any, action: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"[data-action='{action}']").click()


def test_console_in_a_browser(demo: ParUp, browser: Any, demo_v2_apkg: Path, shots: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    console = demo.info["registry_url"] + "/console"
    assert httpx.get(f"{console}/agents").status_code == 303  # no session: the sign-in page

    # A wrong key is refused on the page, in words.
    browser.get(f"{console}/login")
    browser.find_element(By.ID, "key").send_keys("par_000000000000_" + "x" * 43)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "unknown API key" in _wait(browser, lambda d: d.find_elements(By.ID, "login-error"))[0].text

    _sign_in(browser, console, demo.admin_key)
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#agents tbody tr[data-agent]"))
    assert sorted(r.get_attribute("data-agent") for r in rows) == sorted(DEMO_AGENTS)
    assert all("ready" in r.text for r in rows)
    _screenshot(browser, shots / "console-agents.png")

    # Invoke the demo agent from its page, through the gateway.
    browser.get(f"{console}/agents/default/demo-agent")
    assert "demo-agent.default." in _text(browser, "live")  # its host and URL
    body = browser.find_element(By.ID, "invoke-body")
    body.clear()
    body.send_keys('{"from": "console"}')
    _click(browser, "invoke")
    _wait(browser, lambda d: _text(d, "invoke-result").startswith("200"))
    assert "console" in _text(browser, "invoke-result")
    # Live: the instance the call started shows up without a reload.
    _wait(browser, lambda d: re.search(r"\b1 ready\b", _text(d, "revisions")))

    # Shift 30 % to a second version (uploaded, not deployed) with the slider's number box.
    with demo.registry() as client, demo_v2_apkg.open("rb") as fh:
        uploaded = client.post("/v1/namespaces/default/packages", files={"file": ("v2.apkg", fh)})
        assert uploaded.status_code == 201, uploaded.text
    browser.refresh()
    Select(browser.find_element(By.ID, "traffic-from")).select_by_visible_text("0.1.0")
    Select(browser.find_element(By.ID, "traffic-to")).select_by_visible_text("0.2.0")
    percent = browser.find_element(By.ID, "traffic-percent")
    percent.clear()
    percent.send_keys("30")
    assert browser.find_element(By.ID, "traffic-slider").get_attribute("value") == "30"  # in step
    _click(browser, "apply-traffic")
    _wait(browser, lambda d: "0.2.0 30%" in _text(d, "traffic-now"))
    traffic = [(t["version"], t["percent"]) for t in demo.deployment("demo-agent")["traffic"]]
    assert traffic == [("0.1.0", 70), ("0.2.0", 30)]
    _wait(browser, lambda d: "0.2.0" in _text(d, "revisions"))
    # The chart: requests through the gateway show up as a rate within a scrape or two.
    def busy(d: Any) -> bool:
        for _ in range(5):
            demo.call("demo-agent", json_body={"n": 1})
        return not _text(d, "chart-last").startswith("now: 0 req/s")

    _wait(browser, busy, timeout=40)
    _screenshot(browser, shots / "console-agent.png")
    _click(browser, "rollback")
    _wait(browser, lambda d: "0.1.0 100%" in _text(d, "traffic-now"))

    # Triggers: the demo's, with the broker's counts.
    browser.get(f"{console}/triggers")
    row = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#triggers tr[data-trigger='greetings']"))
    assert "type=par.demo.greeting" in row[0].text and "event-receiver" in row[0].text
    _screenshot(browser, shots / "console-triggers.png")

    # Keys: create one for the demo agent (secret shown once), use it, revoke it, refused.
    browser.get(f"{console}/keys")
    browser.find_element(By.ID, "key-name").send_keys("from-the-console")
    browser.find_element(By.ID, "key-grants").send_keys("default/demo-agent")
    _click(browser, "create-key")
    secret = _wait(browser, lambda d: _text(d, "new-key-secret"))
    assert secret.startswith("par_")
    wait_until(lambda: demo.call("demo-agent", key=secret, json_body={}).status_code == 200, 15, "key works")
    key_id = secret.split("_")[1]
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"button[data-key-id='{key_id}']"))[0].click()
    _wait(browser, lambda d: "revoked" in d.find_element(By.CSS_SELECTOR, f"tr[data-key='{key_id}']").text)
    refused = lambda: demo.call("demo-agent", key=secret, json_body={}).status_code == 401  # noqa: E731
    wait_until(refused, 15, "key refused")
    _screenshot(browser, shots / "console-keys.png")
    # The script ran without errors, and nothing was blocked by the page's own policy.
    logged = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [m for m in logged if "console.js" in m or "Content Security Policy" in m] == []


def test_par_status_tables(demo: ParUp) -> None:
    """`par status`: the parts (each probed) and the agents with their status and instances."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--data-dir", str(demo.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    parts = {line.split()[0]: line.split() for line in lines[1:6]}
    assert set(parts) == {"gateway", "console", "registry", "eventing", "local-gateway"}
    assert all(p[-1] == "up" for p in parts.values()), done.stdout
    assert parts["gateway"][1] == demo.info["gateway_url"]
    agents = {line.split()[1]: line.split() for line in lines if line.startswith("default ")}
    assert set(agents) == set(DEMO_AGENTS)
    assert agents["event-emitter"][2:5] == ["0.1.0", "ready", "0.1.0=100%"]


def test_console_guards(demo: ParUp) -> None:
    """Security headers on every page, a change without the CSRF token refused, a sign-in posted
    from another site refused, a revoked key's session ended."""
    console = demo.info["registry_url"] + "/console"
    # The gateway's own address (the one people know: localhost:8080/console) points to it.
    moved = httpx.get(demo.info["gateway_url"] + "/console/agents?x=1")
    assert moved.status_code == 307 and moved.headers["location"] == f"{console}/agents?x=1"
    page = httpx.get(f"{console}/login")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<script>" not in page.text and " style=" not in page.text
    with httpx.Client(base_url=console) as client:
        assert client.post("/login", data={"key": demo.admin_key},
                           headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        signed_in = client.post("/login", data={"key": demo.admin_key})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        refused = client.post("/agents/default/demo-agent/rollback")
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/agents").text)
        assert token is not None
        created = client.post("/keys", json={"name": "short-lived", "grants": ["default/demo-agent"]},
                              headers={"X-CSRF-Token": token[1]})
        assert created.status_code == 201, created.text
    # A non-admin key sees only what its grants allow, and may not change traffic.
    with httpx.Client(base_url=console) as client:
        assert client.post("/login", data={"key": created.json()["key"]}).status_code == 303
        page = client.get("/agents").text
        assert 'data-agent="demo-agent"' in page and 'data-agent="event-emitter"' not in page
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token is not None
        change = client.post("/agents/default/demo-agent/rollback", headers={"X-CSRF-Token": token[1]})
        assert change.status_code == 403 and change.json()["code"] == "admin_required"
        with demo.registry() as admin:
            admin.delete(f"/v1/keys/{created.json()['id']}")
        assert client.get("/agents").status_code == 303  # revoked: signed out
