"""gasbuild: declarative, reproducible submissions for BitMind's GAS subnet (Bittensor subnet 34).

The public API is small on purpose: load a manifest, build it, check a submission.
Everything else lives in private-by-convention modules behind these names.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
