"""Pick free local ports that outgoing connections cannot take in the meantime."""

import random
import socket
from pathlib import Path

_FALLBACK_EPHEMERAL_LOW = 32768
_LOWEST = 20000


def _ephemeral_low() -> int:
    """Return the first port the kernel hands to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_LOW


def free_port_range(count: int, *, attempts: int = 500) -> int:
    """Return the first of `count` consecutive ports on 127.0.0.1 that nothing listens on now.

    The ports are drawn below the kernel's ephemeral range: a port picked there could be
    taken by some client's outgoing connection before the server binds it.
    """
    high = _ephemeral_low() - count
    draw = random.SystemRandom()
    for _ in range(attempts):
        base = draw.randrange(_LOWEST, high)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def free_port() -> int:
    """Return one free port on 127.0.0.1."""
    return free_port_range(1)
