"""`python -m bottlegen.cli`: the command."""

from . import run

run()
