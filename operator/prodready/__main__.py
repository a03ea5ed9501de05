"""`python -m prodready` is the same as the `prodready` command."""

import sys

from prodready.cli import main

sys.exit(main())
