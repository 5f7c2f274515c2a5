"""``python -m pipeline.cli``."""

from . import main

main()
