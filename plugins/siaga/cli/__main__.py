"""`python -m siaga.cli`: the same as the `siaga` command."""
import sys

from siaga.cli import main

if __name__ == "__main__":
    sys.exit(main())
