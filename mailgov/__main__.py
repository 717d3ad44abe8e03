"""`python -m mailgov`: the `mailgov` command."""

import sys

from mailgov.cli import main

if __name__ == "__main__":
    sys.exit(main())
