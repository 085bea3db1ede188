"""The `mtdsl` Typer app, its two consoles and how a failure is printed: shared by the
modules that register commands (main, report_commands), which import it and not each other."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from ..errors import MtdslError, SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="mtdsl: meta-learning experiments (Meta-ticket, MAML, ANIL, BOIL) from .mt specs.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(e: MtdslError, fmt: str = "text") -> None:
    if isinstance(e, SpecError):
        if fmt == "json":
            print(json.dumps([d.to_json() for d in e.diagnostics], indent=2))
        elif fmt == "github":
            for d in e.diagnostics:
                print(d.to_github())
        else:
            for d in e.diagnostics:
                err.print(_highlighted(d.render()) if err.is_terminal else d.render(), markup=False,
                          soft_wrap=True)
            n = sum(d.severity == "error" for d in e.diagnostics)
            err.print(f"{n} error{'s' * (n != 1)}", style="bold red")
    else:
        err.print(f"error: {e}", style="bold red", markup=False, soft_wrap=True)
    raise typer.Exit(e.exit_code)


def _highlighted(text: str):
    """The diagnostic with its quoted spec line coloured by the .mt lexer."""
    import re

    from rich.syntax import Syntax
    from rich.text import Text

    from ..language.highlight import MtLexer

    out_text = Text()
    for i, line in enumerate(text.splitlines()):
        m = re.match(r"(\d+ \| )(.*)", line)
        if i == 0:
            out_text.append(line, style="bold")
        elif m:
            out_text.append(m.group(1), style="blue")
            code = Syntax(m.group(2), MtLexer(), theme="ansi_dark").highlight(m.group(2))
            code.rstrip()
            out_text.append_text(code)
        else:
            out_text.append(line, style="blue" if line.lstrip().startswith(("|", "=")) else None)
        out_text.append("\n")
    out_text.rstrip()
    return out_text
