"""`python -m winnow` runs the CLI."""

from winnow.cli import main

main()
