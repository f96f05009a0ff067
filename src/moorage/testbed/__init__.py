"""A real multi-node Moorage grid on one Linux host (``moorage testbed``).

Each node is a real Docker Engine in its own network and mount namespace; see ``bed.py`` for
the folder layout, ``engine.py`` for how an engine is run, ``images.py`` for the images every
node gets; the functions at the end of ``bed.py`` are what the command line calls.
"""

from moorage.testbed.bed import DEFAULT_DIR, GRID, Testbed, Timeouts
from moorage.testbed.errors import TestbedError

__all__ = ["DEFAULT_DIR", "GRID", "Testbed", "TestbedError", "Timeouts"]
