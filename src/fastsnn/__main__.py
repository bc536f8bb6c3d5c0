"""``python -m fastsnn`` (also what ``torchrun -m fastsnn train ...`` starts on every rank)."""

import sys

from .cli import main

sys.exit(main())
