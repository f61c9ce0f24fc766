"""``python -m nnscons``: the ``nnscons`` command (:mod:`nnscons.cli`)."""
import sys

from .cli import main

sys.exit(main())
