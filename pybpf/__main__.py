"""`python -m pybpf`: the same command as the `pybpf` script (see `pybpf.cli`)."""

import sys

from pybpf.cli import main

sys.exit(main())
