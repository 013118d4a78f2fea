"""``python -m edgetestbed``: see cli.py."""
import sys

from edgetestbed.cli import main

sys.exit(main())
