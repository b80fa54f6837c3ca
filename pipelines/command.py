"""The command classes every `clickhaul` command is made of: expected failures end as one line, Ctrl-C within a
second. The CLI and the vendor command modules both import this module, so neither imports the other."""

from __future__ import annotations

import sys
from typing import Any

import click

from sources.common.errors import ClickhaulError
from sources.common.redact import redact

from .interrupt import interruptible


def fail(error: BaseException) -> None:
    click.echo(f"error: {redact(str(error))}", err=True)
    sys.exit(1)


def describe(context: click.Context) -> str:
    """`clickhaul push matomo opentracker.sessions`: the command as the user would name it in a message."""
    words = " ".join(context.command_path.split()[1:])
    subject = context.params.get("source") or context.params.get("table") or ""
    return f"clickhaul {words}{' ' + str(subject) if subject else ''}"


class ClickhaulCommand(click.Command):
    """A command whose expected failures (`ClickhaulError`) end as one line on stderr and exit status 1, never a
    trace; Ctrl-C ends it within a second, with one line and exit status 130 (`interrupt`)."""

    def invoke(self, ctx: click.Context) -> Any:
        with interruptible(f"{describe(ctx)} stopped before it finished; nothing is half-written") as interrupts:
            try:
                result = super().invoke(ctx)
            except KeyboardInterrupt as error:
                interrupts.finish(getattr(error, "detail", None))
            except ClickhaulError as error:
                if interrupts.signal is not None:  # what dlt made of the interrupt: still an interrupt
                    interrupts.finish()
                fail(error)
            except Exception:
                if interrupts.signal is not None:
                    interrupts.finish()
                raise
            if interrupts.signal is not None:
                interrupts.finish()
            return result


class ClickhaulGroup(click.Group):
    """A group whose commands, and its subgroups' commands, are `ClickhaulCommand`s: `@group.command()` makes one,
    and a command made elsewhere must be one to be added, so no command can escape the error handling."""

    command_class = ClickhaulCommand
    group_class = type  # subgroups are ClickhaulGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, (ClickhaulCommand, click.Group)):
            raise TypeError(f"{cmd.name}: make it with cls=ClickhaulCommand so its errors end as one line")
        super().add_command(cmd, name)
