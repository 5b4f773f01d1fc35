"""``python -m vislint`` = the ``vislint`` command."""
import sys

from .cli import main

sys.exit(main())
