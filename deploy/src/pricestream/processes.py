"""Background processes of the local stack: start detached, remember by pid file, stop."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A problem the operator can act on; the CLI prints it without a traceback (exit code 1)."""


class UnreachableError(StackError):
    """The stack, or a service or dependency a command needs, does not answer (exit code 3)."""


class StackUsageError(StackError):
    """The operator asked for what cannot be: a port another program holds, a bad value (exit code 2)."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts connections on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def ensure_port_free(port: int, what: str, flag: str) -> None:
    """Fail clearly when another program holds a port the stack needs."""
    if port_in_use(port):
        raise StackUsageError(
            f"port {port} for the {what} is in use by another program: free it or use {flag}"
        )


def tail(path: Path, lines: int = 20) -> str:
    """Return the last lines of a log file, for error messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ManagedProcess:
    """A detached process with a pid file and a log file under the stack's home."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.pid_file = home / "run" / f"{name}.pid"
        self.log_file = home / "logs" / f"{name}.log"

    @property
    def pid(self) -> int | None:
        """Return the pid of the running process, or None."""
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if not _is_zombie(pid) else None

    def running(self) -> bool:
        """Tell whether the process is alive."""
        return self.pid is not None

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> int:
        """Start the process in its own session so it outlives the CLI."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, *, timeout: float = 30.0, sig: int = signal.SIGTERM) -> bool:
        """Send SIGTERM (or `sig`), wait, then SIGKILL; return True if it was running."""
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid is not None:
            time.sleep(0.1)
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self.pid is not None:
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True


def _is_zombie(pid: int) -> bool:
    """Tell whether a pid is a zombie: dead, waiting for its parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state == "Z":
        # A child of ours: reap it so the pid does not linger.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return True
    return False
