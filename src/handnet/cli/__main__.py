"""``python -m handnet.cli``: the same as the ``handnet`` command."""

import sys

from handnet.cli import main

sys.exit(main())
