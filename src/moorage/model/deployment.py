"""What a deployment's message says that the master and the CLI both read."""

from __future__ import annotations

__all__ = ["SUPERSEDED"]

SUPERSEDED = "superseded by a newer deployment"  # the last line of a deployment a newer one took over
