"""Alma Analytics report pages (``GET /analytics/reports``): XML rowsets with resumption tokens.

A page looks like this (only the first page has the token and the column headings)::

    <report><QueryResult>
      <ResumptionToken>HEX</ResumptionToken>
      <IsFinished>false</IsFinished>
      <ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset">
        <xsd:schema …><xsd:element name="Column1" saw-sql:columnHeading="Primary Identifier" …/></xsd:schema>
        <Row><Column0>0</Column0><Column1>123</Column1></Row>
      </rowset></ResultXml>
    </QueryResult></report>

Empty cells are left out of a ``Row``: read cells by tag name. The XML is parsed without entities or
network access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from almatools.errors import SourceError

__all__ = ["ReportPage", "parse_report_page", "ROWSET_NS", "SAW_SQL_NS"]

ROWSET_NS = "urn:schemas-microsoft-com:xml-analysis:rowset"
SAW_SQL_NS = "urn:saw-sql"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class ReportPage:
    """One page of a report: its rows (tag → text), and, on the first page, the token and headings."""

    finished: bool
    token: str | None = None
    headings: dict[str, str] = field(default_factory=dict)  # Column1 → "Primary Identifier"
    rows: list[dict[str, str]] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_report_page(data: bytes) -> ReportPage:
    """Read one Analytics page.

    Raises:
        SourceError: the reply is not an Analytics report page.
    """
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SourceError(f"The Analytics reply is not XML: {exc}") from exc
    result = root.find("QueryResult") if root.tag == "report" else root if root.tag == "QueryResult" else None
    if result is None:
        raise SourceError(f"The Analytics reply has no QueryResult (root element <{root.tag}>).")
    token = (result.findtext("ResumptionToken") or "").strip() or None
    finished = (result.findtext("IsFinished") or "").strip().lower() == "true"
    headings: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    rowset = result.find(f"ResultXml/{{{ROWSET_NS}}}rowset")
    if rowset is not None:
        for element in rowset.iter(f"{{{XSD_NS}}}element"):
            name = element.get("name")
            heading = element.get(f"{{{SAW_SQL_NS}}}columnHeading")
            if name and heading:
                headings[name] = heading
        for row in rowset.findall(f"{{{ROWSET_NS}}}Row"):
            rows.append({_local(cell.tag): (cell.text or "").strip() for cell in row})
    return ReportPage(finished=finished, token=token, headings=headings, rows=rows)
