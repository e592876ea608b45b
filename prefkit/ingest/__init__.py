"""Data in, from anywhere: read rows from files, `datasets` folders and hub ids, detect preference
formats, and import them as prefkit artifacts (see docs/formats.md)."""

from prefkit.ingest.formats import FORMATS, detect_format, normalise_preferences
from prefkit.ingest.importer import import_preferences, resolve_preferences
from prefkit.ingest.sources import SourceOptions, SourceRows, read_source

__all__ = [
    "FORMATS",
    "SourceOptions",
    "SourceRows",
    "detect_format",
    "import_preferences",
    "normalise_preferences",
    "read_source",
    "resolve_preferences",
]
