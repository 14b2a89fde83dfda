"""`python -m myocli` runs the CLI."""

from myocli.cli import main

main()
