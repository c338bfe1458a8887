"""``python -m winnow.stream ARTIFACT --stream ...``: the ``winnow stream`` command on its own."""

from __future__ import annotations

import typer

from winnow.stream.cli import stream


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(stream)
    app()


if __name__ == "__main__":
    main()
