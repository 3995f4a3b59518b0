"""``python -m caveql``: the ``caveql`` command (see :mod:`caveql.repl.cli`)."""

import sys

from caveql.repl.cli import main

if __name__ == "__main__":
    sys.exit(main())
