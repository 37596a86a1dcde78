"""Allows `python -m backup_preflight`."""

import sys

from backup_preflight.cli import main

sys.exit(main())
