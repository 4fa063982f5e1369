"""API tokens: made by the operator (`pricestream tokens create NAME`), kept only as a hash."""

import hashlib
import re
import secrets
from datetime import datetime

from servicekit.db import Connection

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def token_digest(token: str) -> str:
    """Return the stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(conn: Connection, *, name: str, now: datetime) -> str:
    """Make a new token for a client and return it; a name made again gets a new token, the old one ends."""
    if not NAME.match(name):
        raise ValueError(f"token name {name!r}: letters, digits, _ . - only, at most 64")
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO api_tokens (name, token_sha256, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE
           SET token_sha256 = EXCLUDED.token_sha256, created_at = EXCLUDED.created_at""",
        name,
        token_digest(token),
        now,
    )
    return token
