"""bump: impacts of many trips -> road defects (clustering, lifecycle, ranking, storage, simulator, CLI)."""

__version__ = "0.1.0"
