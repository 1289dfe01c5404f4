"""``python -m imet.cli``: the same as the ``imet`` command (used by torchrun)."""

import sys

from imet.cli import main

sys.exit(main())
