"""Analytics report pages in the shape Alma sends them (cells by tag name, token on page one)."""

import pytest

from almatools.analytics import parse_report_page
from almatools.errors import SourceError

FIRST = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<report><QueryResult><ResumptionToken>0A1B2C</ResumptionToken><IsFinished>false</IsFinished>
<ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset">
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql"
  targetNamespace="urn:schemas-microsoft-com:xml-analysis:rowset">
 <xsd:complexType name="Row"><xsd:sequence>
  <xsd:element name="Column0" type="xsd:string" minOccurs="0" saw-sql:type="integer" saw-sql:columnHeading="0"/>
  <xsd:element name="Column1" type="xsd:string" minOccurs="0" saw-sql:type="varchar" saw-sql:columnHeading="Primary Identifier"/>
  <xsd:element name="Column2" type="xsd:string" minOccurs="0" saw-sql:type="varchar" saw-sql:columnHeading="Last Name"/>
  <xsd:element name="Column3" type="xsd:string" minOccurs="0" saw-sql:type="varchar" saw-sql:columnHeading="Email"/>
 </xsd:sequence></xsd:complexType></xsd:schema>
<Row><Column0>0</Column0><Column1>123456789</Column1><Column2>Okafor</Column2><Column3>a@b.edu</Column3></Row>
<Row><Column0>0</Column0><Column1>AL004211</Column1><Column3>c@d.org</Column3></Row>
</rowset></ResultXml></QueryResult></report>"""

LATER = b"""<report><QueryResult><IsFinished>true</IsFinished><ResultXml>
<rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"><Row><Column0>0</Column0><Column2>Lee</Column2></Row></rowset>
</ResultXml></QueryResult></report>"""

STILL_RUNNING = (b"<report><QueryResult><ResumptionToken>0A1B2C</ResumptionToken><IsFinished>false</IsFinished>"
                 b"<ResultXml/></QueryResult></report>")


def test_first_page_has_token_headings_and_sparse_rows():
    page = parse_report_page(FIRST)
    assert page.token == "0A1B2C" and not page.finished
    assert page.headings["Column1"] == "Primary Identifier" and page.headings["Column3"] == "Email"
    assert page.rows[1] == {"Column0": "0", "Column1": "AL004211", "Column3": "c@d.org"}  # no Column2: empty cell


def test_later_page_and_still_running():
    later = parse_report_page(LATER)
    assert later.finished and later.token is None and later.rows == [{"Column0": "0", "Column2": "Lee"}]
    running = parse_report_page(STILL_RUNNING)
    assert not running.finished and running.rows == [] and running.token == "0A1B2C"


def test_not_a_report():
    with pytest.raises(SourceError, match="QueryResult"):
        parse_report_page(b"<users/>")
    with pytest.raises(SourceError, match="not XML"):
        parse_report_page(b"{}")
