"""Moving in from a Prefect server: its database read (source.py), its records turned into
runlog's events (convert.py) and appended with their ids and times (importer.py)."""

from .importer import Importer, Progress, Report, TableReport
from .run import import_database
from .source import KNOWN_HEADS, SourceError, open_source

__all__ = [
    "KNOWN_HEADS", "Importer", "Progress", "Report", "SourceError", "TableReport", "import_database", "open_source",
]
