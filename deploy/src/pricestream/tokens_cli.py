"""`pricestream tokens create NAME`: a Bearer token for the catalogue's API, with its higher rate limit."""

import asyncio
from datetime import UTC, datetime

import asyncpg

from catalogue.tokens import create_token
from pricestream.stack import Stack


def make_token(stack: Stack, name: str) -> str:
    """Create (or replace) the token of a client in the running stack's catalogue; return it."""
    dsn = stack.service_process("catalogue").env["CATALOGUE_DATABASE_URL"]

    async def create() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await create_token(conn, name=name, now=datetime.now(UTC))
        finally:
            await conn.close()

    return asyncio.run(create())
