"""cec-pipeline: deforestation and illegal-mining alerts for protected areas.

The layout (one module per stage; imports flow one way, see ``/work/notes/ARCH.md`` and the
README's Development section): :mod:`pipeline.model` (shared names and records),
:mod:`pipeline.config`, :mod:`pipeline.aoi`, :mod:`pipeline.sources` (profiles, search, load,
masks), :mod:`pipeline.indices`, :mod:`pipeline.change`, :mod:`pipeline.scars`,
:mod:`pipeline.classify`, :mod:`pipeline.alerts`, :mod:`pipeline.outputs`; :mod:`pipeline.detect`
does one area, :mod:`pipeline.batch` the whole job (:func:`pipeline.run.run` is the API) and
:mod:`pipeline.cli` is the command line.
"""

__version__ = "0.1.0"

# The main functions, importable from the package itself (``import pipeline``;
# ``pipeline.run_batch(pipeline.load_config("configs/demo.yaml"))``). Loaded on first use, so
# that ``import pipeline`` stays light and the stage modules keep their one-way imports.
# (``pipeline.run`` and ``pipeline.detect`` are modules: their functions are ``run_batch`` and
# ``detect_area`` here, or ``pipeline.run.run`` / ``pipeline.run.detect``.)
_EXPORTS = {
    "load_config": "pipeline.config",
    "run_batch": "pipeline.batch",
    "detect_area": "pipeline.detect",
    "compute_indices": "pipeline.indices",
    "detect_change": "pipeline.change",
    "find_scars": "pipeline.scars",
    "build_alerts": "pipeline.alerts",
    "load_classifier": "pipeline.classify",
    "make_estimator": "pipeline.estimators",
    "fit": "pipeline.training.train",
    "training_table": "pipeline.training.train",
    "score_objects": "pipeline.training.evaluate",
    "clean_polygon": "pipeline.generalize",
    "generate_scene": "pipeline.testing.scene",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
