"""The fast field reader (``element_row``) gives exactly the reference reader's row, or the reference
reader's error, on generated user records: every field the table reads, written plainly or oddly (nil
with content, padded, repeated, nested, wrong list items, attributes written as elements, bad dates and
numbers, entity references)."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from almatools.models import RecordError, user_from_xml
from almatools.quality.frame import USER_COLUMNS, user_row
from almatools.sources import element_row
from almatools.sources.alma_xml import _fast_row

XSI = "http://www.w3.org/2001/XMLSchema-instance"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True,
                         remove_pis=True)

TEXT = st.one_of(
    st.sampled_from(["", " ", "Ann", " Mary \t Ann ", "O'Brien & Co", "Ä b", "٠١٢ 345", "+1 (215) 555-0100",
                     "2026-01-31Z", " 2026-01-31+02:00 ", "2026-02-30", "2026-01-31", "soon", "12.5", " 3 ", "0",
                     "-1", "1e3", "many", "true", "TRUE ", "false", "yes", "200", "21", "PATRON_TYPE",
                     "a@B.cc", " A@b.CC ", "\u00a0x\u2003y"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
)
NIL = st.sampled_from(["", "", "", ' xsi:nil="true"', ' xsi:nil="1"', ' xsi:nil="false"'])


def unread(tag: str) -> st.SearchStrategy[str]:
    """A field the table does not read: the fast reader does not check it (by design: see element_row), so
    it is only ever written plainly."""
    return st.builds(lambda v: f"<{tag}>{escape(v)}</{tag}>", TEXT)


def leaf(tag: str) -> st.SearchStrategy[str]:
    """A leaf field: usually plain text, sometimes nil (with or without text), nested, or an entity."""
    plain = st.builds(lambda v, nil, desc: f"<{tag}{desc}{nil}>{escape(v)}</{tag}>", TEXT, NIL,
                      st.sampled_from(["", ' desc="x"']))
    odd = st.sampled_from([f"<{tag}/>", f'<{tag} xsi:nil="true"/>', f"<{tag}><x>1</x></{tag}>",
                           f"<{tag}>&ent;</{tag}>", f'<{tag} xsi:nil="true"><x>1</x></{tag}>'])
    return st.one_of(plain, plain, plain, odd)


def obj(tag: str, fields: list[str], attrs: bool = False) -> st.SearchStrategy[str]:
    """A list item: some of its fields (maybe repeated or extra), maybe preferred, maybe nil."""
    note = st.builds(lambda v: f"<note>{escape(v)}</note>", TEXT)  # not read by the table: only written plainly
    kids = st.lists(st.one_of(*(leaf(f) for f in fields), note,
                              st.just("<preferred>true</preferred>") if attrs else note), max_size=4)
    attr = st.sampled_from(["", ' preferred="true"', ' preferred="false"', ' preferred=" True"',
                            ' preferred="yes"', ' xsi:nil="true"', ' segment_type="External"']) if attrs \
        else st.sampled_from(["", ' xsi:nil="true"'])
    item_tag = st.sampled_from([tag, tag, tag, tag, "other"])
    return st.builds(lambda t, a, k: f"<{t}{a}>{''.join(k)}</{t}>", item_tag, attr, kids)


def wrapper(tag: str, item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda nil, items: f"<{tag}{nil}>{''.join(items)}</{tag}>", NIL, st.lists(item, max_size=3))


EMAIL_TYPES = wrapper("email_types", st.one_of(leaf("email_type"), leaf("email_type"), leaf("phone_type")))
EMAIL = st.builds(lambda head, types: head.replace("</email>", types + "</email>") if head.startswith("<email")
                  else head, obj("email", ["email_address"], attrs=True), st.one_of(st.just(""), EMAIL_TYPES))
CONTACT = st.builds(lambda nil, parts: f"<contact_info{nil}>{''.join(parts)}</contact_info>", NIL, st.lists(
    st.one_of(wrapper("emails", EMAIL), wrapper("phones", obj("phone", ["phone_number"], attrs=True)),
              wrapper("addresses", obj("address", ["line1", "city", "postal_code"], attrs=True)),
              st.just("<preferred>true</preferred>"), unread("other")), max_size=4))
TOP = ["primary_id", "first_name", "middle_name", "last_name", "user_group", "account_type", "external_id",
       "status", "record_type", "expiry_date", "purge_date", "birth_date", "loans", "requests", "fees",
       "pref_first_name"]
UNREAD = unread("job_description")
FIELDS = st.one_of(
    *(leaf(f) for f in TOP), CONTACT, UNREAD,
    wrapper("user_identifiers", obj("user_identifier", ["value", "id_type"])),
    wrapper("user_roles", obj("user_role", ["role_type"])),  # a role's status is not read: not written oddly
    wrapper("user_statistics", obj("user_statistic", ["statistic_category", "category_type"])),
)
USER = st.builds(lambda pid, rest: f"<user>{pid}{''.join(rest)}</user>", leaf("primary_id"),
                 st.lists(FIELDS, max_size=10))


def outcome(fn, el):
    try:
        return fn(el)
    except RecordError as err:
        return ("error", err.field)


def reference(el):
    row = user_row(user_from_xml(el))
    return tuple(row[c] for c in USER_COLUMNS)


def same(a, b) -> bool:  # NaN (a "nan" number) equals itself here
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(USER)
def test_the_fast_row_is_the_reference_row_or_the_reference_error(body):
    doc = (f'<!DOCTYPE users [<!ENTITY ent "x">]><users xmlns:xsi="{XSI}">{body}</users>').encode()
    user = etree.fromstring(doc, PARSER)[0]
    fast, ref = outcome(element_row, user), outcome(reference, user)
    assert same(fast, ref), (body, fast, ref)


@pytest.mark.parametrize("body, column, value", [
    ('<primary_id>A</primary_id><first_name xsi:nil="true">Bob</first_name>', "first_name", ""),
    ('<primary_id>A</primary_id><expiry_date xsi:nil="true">2026-01-01Z</expiry_date>', "expiry_date", ""),
    ('<primary_id>A</primary_id><contact_info xsi:nil="true"><emails><email><email_address>a@b.cc'
     '</email_address></email></emails></contact_info>', "emails", ""),
    ('<primary_id>A</primary_id><user_roles><user_role xsi:nil="true"><role_type>21</role_type></user_role>'
     '</user_roles>', "roles", ""),
    ('<primary_id>A</primary_id><user_identifiers xsi:nil="true"><user_identifier><value>X</value>'
     '</user_identifier></user_identifiers>', "identifier_values", "a"),
])
def test_a_nil_field_is_empty_whatever_it_holds(body, column, value):
    user = etree.fromstring(f'<users xmlns:xsi="{XSI}"><user>{body}</user></users>'.encode())[0]
    row = element_row(user)
    assert row == reference(user)
    assert row[USER_COLUMNS.index(column)] == value


def test_an_entity_reference_among_the_fields_is_the_reference_readers_error():
    doc = (f'<!DOCTYPE users [<!ENTITY ent "x">]><users xmlns:xsi="{XSI}"><user><primary_id>A</primary_id>'
           f'&ent;<first_name>B</first_name></user></users>').encode()
    user = etree.fromstring(doc, PARSER)[0]
    with pytest.raises(RecordError, match="entity"):
        element_row(user)


REAL_RECORD = (  # one record as Alma's Export Users writes it (the sandbox's 1M-user export's first)
    '<user xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><record_type desc="Public">PUBLIC</record_type>'
    '<primary_id>586345855</primary_id><first_name>Thomas</first_name><middle_name></middle_name><last_name>Arnold'
    '</last_name><full_name>Thomas Arnold</full_name><user_group desc="Graduate student">GRAD</user_group>'
    '<campus_code desc="" xsi:nil="true"/><birth_date>1998-04-16Z</birth_date><expiry_date>2027-11-21Z'
    '</expiry_date><purge_date>2028-11-20Z</purge_date><account_type desc="External">EXTERNAL</account_type>'
    '<external_id>SIS</external_id><status desc="Active">ACTIVE</status><requests>0</requests><loans>10</loans>'
    '<fees>51.36</fees><contact_info><addresses/><emails><email preferred="true" segment_type="External">'
    '<email_address>txa3997837@sandboxu.edu</email_address><description xsi:nil="true"/><email_types>'
    '<email_type desc="School">school</email_type></email_types></email></emails><phones><phone preferred="true" '
    'preferred_sms="false" segment_type="External"><phone_number>(267) 741-7976</phone_number><phone_types>'
    '<phone_type desc="Mobile">mobile</phone_type></phone_types></phone></phones></contact_info><pref_first_name>'
    '</pref_first_name><user_identifiers><user_identifier segment_type="External"><value>586345855</value>'
    '<id_type desc="University ID">UNIV_ID</id_type><note></note><status>ACTIVE</status></user_identifier>'
    '</user_identifiers><user_roles><user_role><status desc="Active">ACTIVE</status><scope desc="Sandbox '
    'University">01SANDBOX_INST</scope><role_type desc="Patron">200</role_type><parameters/></user_role>'
    '</user_roles><user_blocks/><user_notes/><user_statistics><user_statistic segment_type="External">'
    '<statistic_category desc="Student">STUDENT</statistic_category><statistic_note></statistic_note>'
    '</user_statistic></user_statistics><proxy_for_users/></user>')


def test_an_ordinary_record_takes_the_fast_path():  # else every record would pay for the reference reader
    user = etree.fromstring(f"<users>{REAL_RECORD}</users>".encode())[0]
    row = _fast_row(user, "PATRON_TYPE")
    assert row == reference(user)
    assert row[:4] == ("586345855", "Thomas", "", "Arnold")
