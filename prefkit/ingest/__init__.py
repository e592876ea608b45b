"""Data in, from anywhere: read prompts and rows from files, `datasets` folders and hub ids, detect
preference formats, and import them as prefkit artifacts (see docs/formats.md).

The top of the data modules: ingest -> artifacts (folders, manifests, open_artifact) -> records (schemas,
prompt-row validation); prefkit.datasets (the shipped prompt sets) sits beside records.
"""

from prefkit.ingest.formats import FORMATS, detect_format, normalise_preferences
from prefkit.ingest.importer import import_preferences, resolve_preferences
from prefkit.ingest.prompts import read_prompts, resolve_prompts
from prefkit.ingest.sources import SourceOptions, SourceRows, read_source

__all__ = [
    "FORMATS",
    "SourceOptions",
    "SourceRows",
    "detect_format",
    "import_preferences",
    "normalise_preferences",
    "read_prompts",
    "read_source",
    "resolve_preferences",
    "resolve_prompts",
]
