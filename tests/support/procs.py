"""Child processes that are always stopped: each is started in its own session, stopped by its
own pid (SIGTERM, then SIGKILL), and any still running when Python exits are stopped then."""

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where scripts/setup.sh puts the tools (the same rule as scripts/lib.sh).
CACHE = Path(os.environ.get("L402_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "envoy-l402")

_running: list["Process"] = []


def require(path: Path, how: str) -> Path:
    """`path`, or a failure that says how to make it (a missing build is not a test result)."""
    if not path.exists():
        raise RuntimeError(f"{path} is missing: {how}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, name: str, args: list[str], log: Path, env: dict | None = None):
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.popen.pid
        _running.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 20):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
        if self in _running:
            _running.remove(self)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def wait_for(condition, seconds: float, what: str, process: Process | None = None, interval=0.2):
    """Polls `condition` until it is true; fails naming `what`, with the process's log tail if
    the process died meanwhile."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        try:
            if condition():
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(interval)
    tail = f":\n{process.tail()}" if process is not None else ""
    raise RuntimeError(f"timed out after {seconds} s waiting for {what}{tail}")


@atexit.register
def _stop_all():
    for process in list(_running):
        process.stop(timeout=5)
