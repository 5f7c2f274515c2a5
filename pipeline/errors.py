"""Exception hierarchy: one base error, one subclass per kind of failure.

The command line maps each class to an exit code (see ``EXIT_CODES``); messages always name
the file, item, key or area at fault so that a batch log is enough to fix the problem.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_code = 1


class ConfigError(PipelineError):
    """The run configuration is missing, unreadable or invalid."""

    exit_code = 2


class InputError(PipelineError):
    """An input file (areas, catalog, labels) is missing, corrupt or empty."""

    exit_code = 2


class NoItemsError(PipelineError):
    """The imagery search returned nothing usable for a period."""

    exit_code = 2


class NoValidPixelsError(PipelineError):
    """Imagery was found but no clear pixel covers the area in a period."""

    exit_code = 2


class ModelIntegrityError(PipelineError):
    """A model file does not match its card (hash, types or classes)."""

    exit_code = 2


class OutputError(PipelineError):
    """An output could not be written (a full disk, a folder that is a file, no permission).

    Exit 1: not the input's fault; the message names the file. A run that fails this way
    leaves every previous output as it was.
    """

    exit_code = 1


class OutputLockedError(PipelineError):
    """Another run holds the output folder's lock."""

    exit_code = 4
