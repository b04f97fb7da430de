"""bump: impacts of many trips -> road defects (clustering, lifecycle, ranking, storage, simulator, CLI)."""

from bump.replay import Replay, replay

__version__ = "0.1.0"

__all__ = ["Replay", "__version__", "replay"]
