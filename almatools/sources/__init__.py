"""Loading patron records and SIS extracts into the patron table, from files or the live API.

A source is any of:

* Alma user XML (``<users><user>…``, as the SIS load and Export Users v2 write) or a single ``<user>``;
* a zip of such files (what the SIS puts on its server, and what Export Users writes);
* JSON lines, one Alma user object (as ``GET /users/{id}`` returns it) per line, e.g. a :func:`snapshot`;
* a CSV whose columns are those of the patron table (:data:`CSV_COLUMNS`; only ``primary_id`` is
  required);
* ``"api:"``: every user, read live through an :class:`~almatools.client.AlmaClient`;
* ``"analytics:PATH"``: an Alma Analytics users report, read by column heading (:data:`ANALYTICS_HEADINGS`).

:func:`load_users` and :func:`load_sis` return the patron table of :mod:`almatools.quality.frame`.
XML is streamed (every element is freed once read, so a file of a million users never becomes one
tree) and read safely: no entities, DTDs or network. The members of a zip (and the parts of a large
JSON lines file) are read in parallel processes.

Errors: a file that cannot be read at all (missing, not XML, not a zip, XML that stops being well
formed) raises :class:`~almatools.errors.SourceError` naming the file and line. A bad record (a date
that is not a date, a list holding the wrong elements, a line that is not JSON, no primary id) is
skipped and reported as a :class:`~almatools.models.RecordError` with file, record number and field,
in the :class:`LoadReport` of the table (:func:`load_report`).

Limits (memory grows with the records kept, never with the file):

* XML: the root must be ``<users>`` or ``<user>`` (checked before the rest is read); every child of
  ``<users>`` is freed once read, ``<user>`` or not; one that grows past :data:`MAX_RECORD_BYTES`
  (16 MiB) stops the file; libxml2's defaults cap a text node at 10,000,000 bytes and nesting at 256.
* Zip: at most :data:`MAX_ZIP_MEMBERS` ``.xml`` members; each worker opens the archive once for a
  batch of members (its directory is not re-read per member).
* JSON lines: a line of more than :data:`MAX_RECORD_BYTES` is read past in pieces and reported; JSON
  nested deeper than Python's parser takes is reported; a number, list or object where Alma sends text
  (names, dates, ``primary_id``, a code's ``value``, an email address…) is reported, never turned into
  text; a missing or null ``primary_id`` is reported.
* CSV: streamed; a line over 1 MiB or a cell over :data:`MAX_FIELD_CHARS` characters, or more cells than
  the header has columns, is a reported record (:func:`almatools.files.csv_records`).

Reading a zip in parallel starts worker processes; as with any use of :mod:`multiprocessing`, a
script that does so keeps its top-level code under ``if __name__ == "__main__":``.

:func:`load_sources` loads both sources of an analysis (users and SIS extract) the one way notebooks
and commands do it; with no users source it takes the local sandbox's own data
(:func:`almatools.sandbox.files.sandbox_files`).

Modules
-------
``base`` (the load report, limits), ``alma_xml`` (streamed XML), ``jsonl`` (JSON lines), ``pool``
(worker processes), ``csvfile`` (CSV), ``load`` (:func:`load_users`, :func:`load_sis`,
:func:`load_sources`), ``api`` (the live API, Analytics, :func:`snapshot`).
"""

from __future__ import annotations

from almatools.sources.alma_xml import element_row
from almatools.sources.api import SnapshotResult, snapshot
from almatools.sources.base import CSV_COLUMNS, LoadReport, load_report
from almatools.sources.load import LoadedSources, load_sis, load_sources, load_users

__all__ = [
    "CSV_COLUMNS",
    "LoadReport",
    "LoadedSources",
    "SnapshotResult",
    "element_row",
    "load_report",
    "load_sis",
    "load_sources",
    "load_users",
    "snapshot",
]
