"""``python -m clipscale.cli VERB ...``: the same as the ``clipscale`` command."""
import sys

from clipscale.cli import main

sys.exit(main())
