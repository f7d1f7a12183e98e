"""A ``recloop serve`` subprocess for tests, benchmarks and the demo (stopped by PID)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.config import Settings


class ServeProcess:
    """One ``recloop serve`` process on ``settings.api_host``:``settings.api_port``."""

    def __init__(
        self,
        settings: Settings,
        *,
        log_path: Path,
        log_level: str = "warning",
        extra_args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        env = {**os.environ, **settings.to_env(), **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agents", "serve", "--log-level", log_level, *extra_args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path``."""
        return self.base_url + path

    def healthy(self) -> bool:
        """Whether ``/health`` answers 200."""
        try:
            with urllib.request.urlopen(self.url("/health"), timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 30.0) -> ServeProcess:
        """Block until ``/health`` answers; raises with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"serve exited with {self.proc.returncode}:\n{self.tail()}"
                raise RuntimeError(msg)
            if self.healthy():
                return self
            time.sleep(0.1)
        msg = f"serve not healthy within {timeout} s:\n{self.tail()}"
        raise RuntimeError(msg)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()
