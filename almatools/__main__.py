"""``python -m almatools`` is the ``almatools`` command."""

import sys

from almatools.cli import main

sys.exit(main())
