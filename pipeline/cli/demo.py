"""``cec demo``: generate the synthetic La Pampa scene."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from ..testing import scene
from .common import QUIET, VERBOSE, DEMO_DATA, app, console, setup_logging


@app.command("demo")
def demo_command(
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the scene (default data/demo/generated/demo)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Another seed gives another cloud and clearing layout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Generate the synthetic La Pampa scene (a local STAC catalog and its truth)."""
    setup_logging(verbose, quiet)
    spec = scene.DEMO_SPEC if seed is None else dataclasses.replace(scene.DEMO_SPEC, seed=seed)
    folder = out or DEMO_DATA / "generated" / "demo"
    catalog = scene.ensure_scene(spec, folder, DEMO_DATA)
    console.print(f"catalog: {catalog}", markup=False)
