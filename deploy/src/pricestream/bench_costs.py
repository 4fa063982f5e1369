"""Where a bench phase's time went: CPU per part of the stack, and the database's time per service.

Read from /proc (CPU of each service's processes, of its PostgreSQL sessions, of the broker and
of the bench itself) and from pg_stat_statements (how long PostgreSQL executed each service's
statements, and which statement took most of it).
"""

import os
from pathlib import Path

import asyncpg

from pricestream.stack import Stack

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_STATEMENT_SHOWN = 70
"""Characters of a statement shown in the figures: enough to tell which one it is."""


def cpu_seconds(stack: Stack, services: tuple[str, ...]) -> dict[str, float]:
    """Return the CPU seconds used so far by each process of each part, keyed "part@pid".

    Kept per process because a database session may close between two readings: summed per part,
    its seconds would vanish from the second reading and the part's difference would go negative.
    """
    used: dict[str, float] = {}
    for name in services:
        for process in stack.config.process_names(name):
            _add(used, name, stack.services[process].pid)
    # A session's process title is "postgres: ROLE DATABASE ...", and each service has a role of its own.
    for entry in Path("/proc").iterdir():
        title = _cmdline(entry).split()[:2] if entry.name.isdigit() else []
        if title[:1] == ["postgres:"] and (role := title[-1]) in services:
            _add(used, f"{role}_db", int(entry.name))
    _add(used, "broker", stack.broker.process.pid)
    _add(used, "bench", os.getpid())
    used["machine"] = _machine_busy()
    return used


def cores_between(
    before: dict[str, float], after: dict[str, float], seconds: float, services: tuple[str, ...]
) -> dict[str, float]:
    """Return the cores each part used on average between two readings, and the rest of the machine's.

    A process gone by the second reading counts nothing (its last seconds are not known), one
    started after the first counts all of its own.
    """
    parts = [*services, *(f"{name}_db" for name in services), "broker", "bench", "machine"]
    cores = dict.fromkeys(parts, 0.0)
    for key, now in after.items():
        # A pid reused by a new process reads less than the old one did: count only the new one's.
        spent = now - then if now >= (then := before.get(key, 0.0)) else now
        cores[key.split("@", 1)[0]] += spent / max(seconds, 1e-9)
    cores["rest"] = cores["machine"] - sum(used for part, used in cores.items() if part != "machine")
    return {part: round(used, 2) for part, used in cores.items()}


def _add(used: dict[str, float], part: str, pid: int | None) -> None:
    """Record a live process's CPU seconds under its part."""
    if pid is not None and (seconds := _process_cpu(pid)) is not None:
        used[f"{part}@{pid}"] = seconds


async def forget_statements(dsn: str) -> None:
    """Start pg_stat_statements' counts afresh (a superuser's DSN)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT extensions.pg_stat_statements_reset()")
    finally:
        await conn.close()


async def statement_times(dsn: str, services: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Return, per service, the seconds PostgreSQL executed its statements and the costliest one's share.

    Execution time is wall time inside the server: on a busy machine it includes waiting for a core.
    """
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT r.rolname AS service, s.total_exec_time AS ms, s.calls, s.query
               FROM extensions.pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
               WHERE r.rolname = ANY($1::text[])""",
            list(services),
        )
    finally:
        await conn.close()
    total = dict.fromkeys(services, 0.0)
    top: dict[str, tuple[float, str]] = {}
    for row in rows:
        total[row["service"]] += row["ms"]
        if row["ms"] > top.get(row["service"], (0.0, ""))[0]:
            # How often it ran tells a costly statement from one run too often.
            shown = " ".join(row["query"].split())[:_STATEMENT_SHOWN]
            top[row["service"]] = (row["ms"], f"{shown} ({row['calls']:,} calls)")
    return {
        "database_s": {name: round(ms / 1000, 2) for name, ms in total.items()},
        "database_top": {
            name: f"{ms / total[name]:.0%} {query}" for name, (ms, query) in top.items() if total[name]
        },
    }


def _process_cpu(pid: int) -> float | None:
    """Return a process's user and system CPU seconds so far (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _machine_busy() -> float:
    """Return the CPU seconds every core of the machine spent busy so far (all but idle and I/O wait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_S


def _cmdline(entry: Path) -> str:
    """Return a process's command line (its title, for a PostgreSQL session), or '' if unreadable."""
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
