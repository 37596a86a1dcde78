"""The estate stage: raw snapshot rows in, one fact record per VM out. Pure functions, no I/O."""

from backup_preflight.estate.build import Estate, build_estate

__all__ = ["Estate", "build_estate"]
