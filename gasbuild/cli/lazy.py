"""A click group that lists its commands without importing them.

``gasbuild --help`` used to import every command module (push pulls in the publish code's
types, eval its own) only to print one line per command. :class:`LazyGroup` knows each
command's loader and short help, so the group's help and the completion of command names
read that table; a command's module is imported only when the command runs or its own
``--help`` is asked. ``tests/test_cli_lazy.py`` compares the table with the real commands, so
the short help written here cannot drift from the commands' docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# A command's loader (imports its module, returns the command) and its short help.
Lazy = tuple[Callable[[], click.Command], str]


class LazyGroup(click.Group):
    """A group whose ``lazy`` commands are loaded on first use (then kept in ``commands``)."""

    def __init__(self, *args: Any, lazy: dict[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Lazy] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy:
            command = self.lazy[cmd_name][0]()
            self.commands[cmd_name] = command
        return command

    def listed_help(self, name: str, limit: int = 45) -> str | None:
        """What the help lists for ``name``: the loaded command's own, else the table's
        (shortened exactly as click shortens a docstring); None for an unknown name."""
        if name in self.commands:
            return self.commands[name].get_short_help_str(limit)
        if name in self.lazy:  # click's own shortening, through a stand-in command
            return click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As ``click.Group.format_commands`` (same layout and shortening), from the table."""
        names = [n for n in self.list_commands(ctx) if not self._hidden(n)]
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(name, self.listed_help(name, limit) or "") for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete command names from the table (click's own would import every command),
        then the group's options as click does."""
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=self.listed_help(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete) and not self._hidden(name)
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Click (8.4 on) suggests close names from ``commands`` alone: offer the lazy ones."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            no_such = getattr(click.exceptions, "NoSuchCommand", None)
            if no_such is None or not isinstance(error, no_such) or not args:
                raise
            raise no_such(args[0], possibilities=self.list_commands(ctx), ctx=ctx) from None

    def _hidden(self, name: str) -> bool:
        command = self.commands.get(name)
        return command is not None and command.hidden
