"""backup-preflight: policy-as-code checks for the preconditions of Azure VM backup snapshots."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backup-preflight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
