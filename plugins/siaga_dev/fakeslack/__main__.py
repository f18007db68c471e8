"""`python -m siaga_dev.fakeslack --port 8089`: see `cli.py`."""
import sys

from siaga_dev.fakeslack.cli import main

sys.exit(main())
