"""The `synthmix` Typer app and the options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Will synthetic data help my text classifier? Generate, mix, train and measure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
card_app = typer.Typer(
    help="Task cards: classes described as in the annotation guide.", no_args_is_help=True
)
app.add_typer(card_app, name="card")

TextColumn = Annotated[str, typer.Option(help="Column holding the texts.")]
LabelColumn = Annotated[str, typer.Option(help="Column holding the labels.")]
Encoding = Annotated[
    str, typer.Option(help="File encoding; 'auto' reads UTF-8 and falls back to cp1251.")
]


def _emit(text: str, out: Path | None) -> None:
    """YAML for the user: to stdout (pipeable), or to a file with a note on stderr."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


def claim_output(
    ctx: typer.Context, path: Path, what: str = "output", folder: bool = False
) -> None:
    """Check now that `path` can be written (before any work is paid for) and hold its lock
    until the command ends, so a second process writing it is refused instead of clobbering."""
    from synthmix.core.files import check_writable
    from synthmix.core.locks import exclusive

    check_writable(path, what, folder)
    ctx.with_resource(exclusive(path, what))


BackendKind = Annotated[str, typer.Option(help="llama-cpp, openai or transformers.")]
ModelName = Annotated[
    str | None, typer.Option(help="Model name, or GGUF path (default: bundled Gemma-3-270M).")
]
BaseUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")]
ApiKeyEnv = Annotated[str, typer.Option(help="Environment variable holding the API key.")]
Endpoint = Annotated[
    bool | None,
    typer.Option(
        "--chat/--completions",
        help="OpenAI-compatible servers: chat endpoint (instruction models; the default) or"
        " completions endpoint (base models, with completion-few-shot).",
    ),
]
AnswerCachePath = Annotated[Path, typer.Option(help="Answer cache (SQLite).")]
