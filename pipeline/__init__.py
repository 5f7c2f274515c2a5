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
