"""cec-pipeline: deforestation and illegal-mining alerts for protected areas.

The stages, one module each: :mod:`pipeline.config`, :mod:`pipeline.aoi`, :mod:`pipeline.ingest`,
:mod:`pipeline.mask`, :mod:`pipeline.indices`, :mod:`pipeline.change`, :mod:`pipeline.scars`,
:mod:`pipeline.classify`, :mod:`pipeline.alerts`; :mod:`pipeline.run` chains them and
:mod:`pipeline.cli` is the command line.
"""

__version__ = "0.1.0"
