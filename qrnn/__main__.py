"""``python -m qrnn`` is the ``qrnn`` command (also under ``torchrun -m qrnn``)."""

import sys

from qrnn.cli import main

sys.exit(main())
