"""``python -m pipeline.cli``."""

from . import app

app()
