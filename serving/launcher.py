"""How an instance process comes to be: forked from the warm runtime template when it runs,
else started as `python -m runtime` (while the template starts, after it died, or with
`PAR_PREFORK=false`). Each instance gets Knative's variables, the deployment's env, a port and
its sandbox (`sandbox.py`), entered in the child before any agent code runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .instance import Instance, free_port
from .logs import LogCollector
from .sandbox import Confiner
from .settings import ServingSettings
from .template import RuntimeTemplate, TemplateUnavailable
from .types import RevisionSpec

RUNTIME_COMMAND: tuple[str, ...] = (sys.executable, "-m", "runtime")
TEMPLATE_RETRY_SECONDS = 30.0
log = logging.getLogger("par.serving.launcher")


class Launcher:
    def __init__(
        self, settings: ServingSettings, confiner: Confiner, command: Sequence[str] = RUNTIME_COMMAND
    ) -> None:
        self._logs = settings.data_dir / "logs"
        self.collector = LogCollector(self._logs, settings.log_max_bytes, settings.log_max_files)
        self.confiner = confiner
        self._command = tuple(command)
        self._prefork = settings.prefork and self._command == RUNTIME_COMMAND
        self._template: RuntimeTemplate | None = None
        self._template_start: asyncio.Task[None] | None = None
        self._template_started = float("-inf")

    def start(self) -> None:
        """Start the runtime template in the background (idempotent)."""
        if self._prefork and self._template is None:
            self._renew_template()

    async def launch(self, spec: RevisionSpec) -> Instance:
        port = free_port()
        confined = self.confiner.confine(spec, port)
        env = {**instance_env(spec), **confined.env}
        cwd, sandbox = confined.folder / "work", confined.sandbox.to_json()
        channel = self.collector.open(spec.namespace, spec.agent, spec.version)  # stamped lines: logs.py
        try:
            instance = await self._start(spec, env, channel.pipe, port, cwd, sandbox)
        except BaseException:
            confined.release()
            channel.close_writer()
            raise
        instance.confined = confined
        instance.id, instance.channel = channel.instance, channel
        loop = asyncio.get_running_loop()

        def finished(_: object) -> None:  # runs before the revision's own exit watcher
            instance.oom_killed = confined.oom_killed()
            channel.close_writer()
            loop.run_in_executor(None, confined.release)

        instance.exited.add_done_callback(finished)
        return instance

    async def _start(
        self, spec: RevisionSpec, env: dict[str, str], log_path: Path, port: int, cwd: Path, sandbox: dict
    ) -> Instance:
        template = self._template
        if template is not None and template.ready:
            with contextlib.suppress(TemplateUnavailable):
                return await template.fork(env, log_path, port, cwd, sandbox)
        if template is not None and self._template_start is not None and self._template_start.done():
            self._renew_template()  # it died or never started: try again, at most every 30 s
        return await Instance.spawn(self._command, env, log_path, port, cwd, sandbox)

    def _renew_template(self) -> None:
        now = time.monotonic()
        if now - self._template_started < TEMPLATE_RETRY_SECONDS:
            return
        self._template_started = now
        if self._template is not None:
            self._template.kill_now()
        self._template = RuntimeTemplate(base_env(), self._logs / "runtime-template.log")
        self._template_start = asyncio.create_task(self._start_template(self._template))

    @staticmethod
    async def _start_template(template: RuntimeTemplate) -> None:
        try:
            await template.start()
        except Exception:  # instances are then started directly, only slower
            log.exception("runtime template failed to start")
            await template.close()

    async def close(self) -> None:
        self.collector.close()
        if self._template_start is not None:
            self._template_start.cancel()
        if self._template is not None:
            await self._template.close()

    def kill_now(self) -> None:
        if self._template is not None:
            self._template.kill_now()


def base_env() -> dict[str, str]:
    """The platform's environment minus its own `PAR_*` settings (agents must not see them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}


def instance_env(spec: RevisionSpec) -> dict[str, str]:
    """The base environment plus Knative's variables, then the deployment's own env (which
    wins, as in the design's precedence)."""
    env = base_env()
    env.update(
        AGENT_PACKAGE_PATH=str(Path(spec.package_dir)),
        PAR_RUNTIME_HOST="127.0.0.1",  # loopback only: the gateway is the way in
        K_SERVICE=spec.agent,
        K_CONFIGURATION=spec.agent,
        K_REVISION=f"{spec.agent}-{spec.version}",
    )
    env.update(spec.env)
    return env
