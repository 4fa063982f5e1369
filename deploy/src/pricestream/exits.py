"""Exit codes of the CLI, and the one place that maps errors to them."""

from typing import Any

import httpx
import typer
from aiokafka.errors import KafkaConnectionError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from pricestream.processes import StackError, StackUsageError, UnreachableError
from simulator.story import StoryError

OK = 0
FAILED = 1
"""A check failed or an operation did not succeed: a component down, a failed run, nothing published."""
USAGE = 2
"""The command line asked for what cannot be: an unknown option or value, a port already taken."""
UNREACHABLE = 3
"""The stack, or a service or dependency the command needs, does not answer."""
INTERRUPTED = 130
"""Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it), after cleaning up."""

errors = Console(stderr=True)


def exit_code(exc: BaseException) -> int | None:
    """Return the exit code of an error an operator can act on, or None for a bug (a traceback)."""
    if isinstance(exc, StackUsageError):
        return USAGE
    # Refused connections and timeouts of the broker, a service's HTTP API or PostgreSQL.
    if isinstance(
        exc, UnreachableError | KafkaConnectionError | httpx.TransportError | ConnectionError | TimeoutError
    ):
        return UNREACHABLE
    if isinstance(exc, StackError | StoryError):
        return FAILED
    return None


def unreachable_message(exc: BaseException) -> str:
    """Say what did not answer, with the way out."""
    if isinstance(exc, UnreachableError):
        return str(exc)
    return f"{exc or type(exc).__name__}: is the stack up? (`pricestream up`, `pricestream status`)"


class ExitCodeGroup(TyperGroup):
    """The CLI's command group: operator errors become a message on stderr and their exit code."""

    # The context is typer's vendored click Context, which typer does not export by that name.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; map the errors an operator can act on to exit codes."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            code = exit_code(exc)
            if code is None:
                raise
            message = unreachable_message(exc) if code == UNREACHABLE else str(exc)
            errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code) from None
