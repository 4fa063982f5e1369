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
    """Return the CPU seconds used so far by each service, its database sessions, the broker and the bench."""
    used = dict.fromkeys(services, 0.0) | {f"{name}_db": 0.0 for name in services}
    for name in services:
        for process in stack.config.process_names(name):
            used[name] += _process_cpu(stack.services[process].pid)
    # A session's process title is "postgres: ROLE DATABASE ...", and each service has a role of its own.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (title := _cmdline(entry).split()[:2])[:1] == ["postgres:"]:
            role = title[-1]
            if role in services:
                used[f"{role}_db"] += _process_cpu(int(entry.name))
    used["broker"] = _process_cpu(stack.broker.process.pid)
    used["bench"] = _process_cpu(os.getpid())
    used["machine"] = _machine_busy()
    return used


def cores_between(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Return the cores each part used on average between two readings, and the rest of the machine's."""
    cores = {part: (after[part] - before[part]) / max(seconds, 1e-9) for part in before}
    cores["rest"] = cores["machine"] - sum(used for part, used in cores.items() if part != "machine")
    return {part: round(used, 2) for part, used in cores.items()}


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
            """SELECT r.rolname AS service, s.total_exec_time AS ms, s.query
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
            top[row["service"]] = (row["ms"], " ".join(row["query"].split())[:_STATEMENT_SHOWN])
    return {
        "database_s": {name: round(ms / 1000, 1) for name, ms in total.items()},
        "database_top": {
            name: f"{ms / total[name]:.0%} {query}" for name, (ms, query) in top.items() if total[name]
        },
    }


def _process_cpu(pid: int | None) -> float:
    """Return a process's user and system CPU seconds so far (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
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
