"""``python -m vislint`` = the ``vislint`` command."""
from .cli import run

run()
