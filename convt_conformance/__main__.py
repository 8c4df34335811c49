"""``python -m convt_conformance`` is the ``convt`` command."""

import sys

from .cli import main

sys.exit(main())
