"""The labeler contract: pointwise scores for each completion of each prompt (higher is better).

The protocols live in `prefkit.protocols` with every other plugin contract; re-exported here.
"""

from prefkit.protocols import Labeler, ReportsUsage

__all__ = ["Labeler", "ReportsUsage"]
