"""Child processes the sandbox starts (pods' containers, Prometheus, the operator), stopped for sure.

Every child gets a session (process group) of its own, so stopping it signals everything it
started too, and on Linux ``PR_SET_PDEATHSIG``, so the kernel sends it SIGKILL if the thread
that started it dies without stopping it (the sandbox itself SIGKILLed): no orphan outlives us.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ManagedProcess", "free_port", "port_is_bound", "stop_all"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ManagedProcess:
    """One child process with its output in ``log_path``; :meth:`stop` ends its whole group."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
        try:
            self.popen = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            self._log.close()
            raise
        self.pid = self.popen.pid
        self.started = time.monotonic()
        self._term_sent: float | None = None

    def poll(self) -> int | None:
        code = self.popen.poll()
        if code is not None and not self._log.closed:
            self._log.close()
        return code

    @property
    def running(self) -> bool:
        return self.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def terminate(self) -> None:
        """Ask the group to stop (SIGTERM); :meth:`reap` escalates after the grace period."""
        if self._term_sent is None:
            self._term_sent = time.monotonic()
        self._signal_group(signal.SIGTERM)

    def reap(self, grace: float) -> bool:
        """Non-blocking: True once the process is gone; SIGKILL after ``grace`` seconds of SIGTERM."""
        if self.poll() is not None:
            self._signal_group(signal.SIGKILL)  # anything it left behind in its group
            return True
        if self._term_sent is not None and time.monotonic() - self._term_sent > grace:
            self._signal_group(signal.SIGKILL)
        return False

    def stop(self, grace: float = 5.0) -> int | None:
        """Blocking stop: SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
        stop_all([self], grace)
        return self.popen.returncode

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def stop_all(processes: Iterable[ManagedProcess], grace: float = 5.0) -> None:
    """Stop several processes at once: SIGTERM to all, one shared grace period, SIGKILL the rest."""
    procs = [p for p in processes if p.poll() is None]
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace
    while procs and time.monotonic() < deadline:
        procs = [p for p in procs if not p.reap(grace)]
        if procs:
            time.sleep(0.05)
    for proc in procs:
        proc._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(5)
        proc.poll()


def wait_http_ready(process: ManagedProcess, url: str, name: str, timeout: float = 30.0) -> None:
    """Until ``GET url`` answers 200 (a daemon's readiness endpoint); fails early if the process
    exits, with the tail of its log either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} not ready within {timeout}s: {process.tail()}")
