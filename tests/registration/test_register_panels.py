"""The registration panels driven headless: set ``.value``, call ``.click()``, read the widgets."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta, timezone

import ipywidgets as widgets
import pytest
from registration_helpers import DEFAULT, EXTERNAL_ID, TODAY, fresh_id, good_form, raw_user, token

from almatools.ui import build_bulk_panel, build_convert_panel, build_registration_form


def fill(form, patron) -> None:
    """Type a PatronForm into the panel the way staff would (affiliation first: it sets the defaults)."""
    form.fields["affiliation"].value = patron.affiliation
    for name in ("first_name", "last_name", "primary_id", "email_address"):
        form.fields[name].value = getattr(patron, name)
    form.fields["birth_date"].value = patron.birth_date.isoformat()
    if patron.password:
        form.fields["password"].value = form.fields["password_confirm"].value = patron.password


def starred(form) -> set[str]:
    return {name for name, label in form.labels.items() if "★" in label.value}


def test_the_panel_is_a_widget_with_stable_classes(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    assert isinstance(form, widgets.VBox)
    assert "almatools-last_name" in form.fields["last_name"]._dom_classes
    assert "almatools-register" in form.register_button._dom_classes
    assert "SANDBOX" in form.banner.value and form.register_button.disabled


def test_required_fields_are_starred_as_each_procedure_says(client):
    consortium_like = build_registration_form(client, DEFAULT, today=TODAY)
    consortium_like.fields["affiliation"].value = "community"
    assert {"first_name", "last_name", "primary_id", "user_group", "expiry_date", "purge_date", "email_type",
            "email_address", "password", "password_confirm"} <= starred(consortium_like)
    assert "middle_name" not in starred(consortium_like)
    external = build_registration_form(client, EXTERNAL_ID, today=TODAY)
    external.fields["affiliation"].value = "alum"
    assert "email_address" not in starred(external) and "password" not in starred(external)
    assert {"first_name", "last_name", "primary_id", "expiry_date"} <= starred(external)


def test_the_sis_choice_shows_or_hides_the_password_fields(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    form.fields["affiliation"].value = "community"
    assert form.fields["managed"].value == "local" and form.password_box.layout.display == ""
    assert form.fields["user_group"].value == "COMMUNITY"
    assert form.fields["expiry_date"].value == (TODAY + timedelta(days=365)).isoformat()
    form.fields["managed"].value = "sis"
    assert form.password_box.layout.display == "none"
    assert "SIS load" in form.messages["managed"].value  # the procedure treats a community borrower as local
    form.fields["affiliation"].value = "student"
    assert form.password_box.layout.display == "none"
    seed_003 = build_registration_form(client, EXTERNAL_ID, today=TODAY)
    seed_003.fields["affiliation"].value = "friend"  # locally managed, but "do not set an Alma password"
    assert seed_003.password_box.layout.display == "none"


def test_live_validation_marks_a_field_red_with_the_message_beside_it(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, good_form(client, DEFAULT, "community"))
    assert not form.register_button.disabled, form.status.value
    form.fields["last_name"].value = ""
    assert "almatools-invalid" in form.fields["last_name"]._dom_classes
    assert "Fill in the last name" in form.messages["last_name"].value
    assert form.register_button.disabled and "Last name" in form.status.value
    form.fields["primary_id"].value = "12"
    assert "CB followed by 6 digits" in form.messages["primary_id"].value
    form.fields["password_confirm"].value = "something else"
    assert "differ" in form.messages["password_confirm"].value
    form.fields["last_name"].value = "Doe"
    assert "almatools-invalid" not in form.fields["last_name"]._dom_classes and form.messages["last_name"].value == ""
    untouched = build_registration_form(client, DEFAULT, today=TODAY)
    assert untouched.messages["last_name"].value == ""  # not red before staff touched it …
    untouched.check_button.click()
    assert "almatools-invalid" in untouched.fields["last_name"]._dom_classes  # … but after a button


def test_register_creates_confirms_and_refuses_a_second_time(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    patron = good_form(client, DEFAULT, "alum")
    fill(form, patron)
    form.register_button.click()
    assert form.outcome.status == "created", form.result.value
    assert "CREATED" in form.result.value and patron.primary_id in form.result.value
    stored = client.get_user(patron.primary_id)
    assert stored["last_name"] == patron.last_name and stored["user_group"]["value"] == "ALUMNI"
    assert form.fields["password"].value == "" and patron.password not in repr(form.outcome)
    assert form.register_button.disabled  # the password boxes were emptied: no accidental second click
    form.fields["password"].value = form.fields["password_confirm"].value = patron.password
    form.register_button.click()  # and a deliberate one searches again and is refused
    assert form.outcome.status == "blocked" and "BLOCKED" in form.result.value
    assert patron.primary_id in form.existing.value


def test_check_shows_an_exact_match_and_register_is_refused(client):
    existing = fresh_id(client, DEFAULT.groups["COMMUNITY"])
    client.create_user(raw_user(existing, first=token(), last=token()))
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, good_form(client, DEFAULT, "community", primary_id=existing.lower()))
    form.check_button.click()
    assert existing in form.existing.value and "blocked" in form.existing.value
    assert ">Match (of 100)</th>" in form.existing.value  # the score says its scale
    form.register_button.click()
    assert "BLOCKED" in form.result.value and form.outcome.status == "blocked"


def test_possible_matches_are_shown_before_anything_is_created(client):
    patron = good_form(client, DEFAULT, "friend")
    namesake = fresh_id(client, DEFAULT.groups["FRIENDS"])
    client.create_user(raw_user(namesake, first=patron.first_name, last=patron.last_name, group="FRIENDS"))
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, patron)
    form.register_button.click()
    assert namesake in form.existing.value and "click Register again" in form.result.value
    assert client.find_user(patron.primary_id) is None
    form.register_button.click()
    assert form.outcome.status == "created" and client.find_user(patron.primary_id) is not None


def test_the_dry_run_switch_plans_only(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    form.dry_run.value = True
    assert "DRY RUN" in form.banner.value
    patron = good_form(client, DEFAULT, "community")
    fill(form, patron)
    form.register_button.click()
    assert form.outcome.status == "planned" and "PLANNED" in form.result.value
    assert client.find_user(patron.primary_id) is None and not client.dry_run
    assert form.active_client.planned_writes and client.planned_writes == []
    form.dry_run.value = False
    assert "DRY RUN" not in form.banner.value and form.active_client is client


def test_seed_003_through_the_form_writes_the_merge_request(client, tmp_path):
    patron = good_form(client, EXTERNAL_ID, "alum")
    old = fresh_id(client, EXTERNAL_ID.groups["UGRAD"])
    client.create_user(raw_user(old, first=patron.first_name, last=patron.last_name, group="UGRAD", external=True,
                                birth=patron.birth_date, expiry=TODAY - timedelta(days=500)))
    requests = tmp_path / "merge_requests.csv"
    form = build_registration_form(client, EXTERNAL_ID, merge_requests=requests, today=TODAY)
    fill(form, patron)
    form.check_button.click()
    assert old in form.existing.value and "merge request" in form.existing.value
    form.register_button.click()
    assert form.outcome.status == "created" and f"{old} → {patron.primary_id}" in form.result.value
    assert f"{old},{patron.primary_id}" in requests.read_text(encoding="utf-8")


def test_convert_panel_checks_before_it_converts(client):
    pid = fresh_id(client, DEFAULT.groups["UGRAD"])
    client.create_user(raw_user(pid, first=token(), last=token(), group="UGRAD"))
    panel = build_convert_panel(client, DEFAULT)
    assert panel.convert_button.disabled
    panel.primary_id.value = pid
    panel.check_button.click()
    assert "READY" in panel.result.value and not panel.convert_button.disabled
    assert client.get_user(pid)["account_type"]["value"] == "INTERNAL"
    panel.primary_id.value = pid + "0"
    assert panel.convert_button.disabled  # a changed identifier needs a new check
    panel.primary_id.value = pid
    panel.check_button.click()
    panel.convert_button.click()
    assert panel.outcome.status == "converted" and "CONVERTED" in panel.result.value
    assert client.get_user(pid)["account_type"]["value"] == "EXTERNAL"
    panel.check_button.click()
    assert "already SIS-managed" in panel.result.value and panel.convert_button.disabled


def write_csv(path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["affiliation", "first_name", "last_name", "primary_id",
                                                    "expiry_date", "email_address", "password", "managed"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("how", ["path", "upload"])
def test_bulk_panel_runs_a_file_and_shows_the_issue_file(client, tmp_path, how):
    rows = []
    for _ in range(4):
        p = good_form(client, DEFAULT, "community")
        rows.append({"affiliation": "community", "first_name": p.first_name, "last_name": p.last_name,
                     "primary_id": p.primary_id, "expiry_date": p.expiry_date.isoformat(),
                     "email_address": p.email_address, "password": p.password})
    rows.append({**rows[0], "primary_id": "BAD", "email_address": "x@example.org"})
    source = tmp_path / "new_borrowers.csv"
    write_csv(source, rows)
    panel = build_bulk_panel(client, DEFAULT, work_dir=tmp_path / "uploads", today=TODAY)
    if how == "path":
        panel.path.value = str(source)
    else:
        panel.upload.value = ({"name": source.name, "type": "text/csv", "size": source.stat().st_size,
                               "content": memoryview(source.read_bytes()),
                               "last_modified": datetime.now(timezone.utc)},)
    panel.run_button.click()
    assert panel.result is not None and panel.result.created == 4 and panel.result.invalid == 1
    assert panel.progress.value == panel.progress.max == 5
    assert "4 created" in panel.summary.value and "1 invalid" in panel.summary.value
    assert str(panel.result.issues_path) in panel.issues.value and "CB followed by 6 digits" in panel.issues.value
    assert all(client.find_user(r["primary_id"]) is not None for r in rows[:4])
    panel.run_button.click()  # the same file again: nothing is sent twice
    assert panel.result.created == 0 and panel.result.already_done == 4
    assert "4 done in an earlier run" in panel.summary.value


def test_bulk_panel_without_a_file_says_so(client):
    panel = build_bulk_panel(client, DEFAULT)
    panel.run_button.click()
    assert "Upload a CSV file" in panel.summary.value and panel.result is None
    panel.path.value = "/no/such/file.csv"
    panel.run_button.click()
    assert "does not exist" in panel.summary.value


def _same_person_elsewhere(client, patron, *, group: str, expiry, status: str = "ACTIVE") -> str:
    """An existing account of the person being registered (same name, email and birth date), another identifier."""
    pid = fresh_id(client, DEFAULT.groups[group])
    client.create_user(raw_user(pid, first=patron.first_name, last=patron.last_name, group=group,
                                birth=patron.birth_date, email=patron.email_address, expiry=expiry, status=status))
    return pid


def test_an_active_patron_registered_again_is_blocked_and_renewed_in_one_click(client):
    patron = good_form(client, DEFAULT, "community")
    old = _same_person_elsewhere(client, patron, group="COMMUNITY", expiry=TODAY + timedelta(days=20))
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, patron)
    assert not form.register_button.disabled and "The form is complete" in form.status.value
    form.check_button.click()
    assert form.search.decision.action == "renew" and form.search.decision.target == old
    assert form.register_button.disabled  # never "complete" with Register enabled while blocked
    assert "The form is complete" not in form.status.value and "Blocked" in form.status.value
    assert old in form.status.value and "Renew" in form.status.value
    assert form.renew_button.layout.display == "" and form.update_button.layout.display == ""
    form.register_button.click()  # a stray click creates nothing either
    assert form.outcome.status == "blocked" and client.find_user(patron.primary_id) is None
    form.renew_button.click()
    assert form.outcome.status == "renewed", form.result.value
    new_expiry = TODAY + timedelta(days=DEFAULT.groups["COMMUNITY"].default_expiry_days)
    stored = client.get_user(old)
    assert stored["expiry_date"] == new_expiry.isoformat() + "Z"
    assert stored["purge_date"] == (new_expiry + timedelta(days=DEFAULT.retention_days)).isoformat() + "Z"
    assert "RENEWED" in form.result.value and new_expiry.isoformat() in form.result.value
    assert client.find_user(patron.primary_id) is None  # still one account
    assert form.register_button.disabled and "Blocked" in form.status.value  # searched again: still the same person
    assert form.search.decision.action == "update" and form.renew_button.layout.display == "none"  # renewed already


def test_an_expired_account_in_the_same_group_is_renewed_not_duplicated(client):
    patron = good_form(client, DEFAULT, "alum")
    old = _same_person_elsewhere(client, patron, group="ALUMNI", expiry=TODAY - timedelta(days=400), status="INACTIVE")
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, patron)
    form.check_button.click()
    assert form.search.decision.action == "renew" and form.register_button.disabled
    form.renew_button.click()
    stored = client.get_user(old)
    assert stored["status"]["value"] == "ACTIVE" and stored["expiry_date"] > TODAY.isoformat()


def test_one_person_one_account_offers_update_for_an_active_local_account_elsewhere(client):
    assert DEFAULT.one_account_per_person
    patron = good_form(client, DEFAULT, "community")
    old = _same_person_elsewhere(client, patron, group="FRIENDS", expiry=TODAY + timedelta(days=100))
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, patron)
    form.check_button.click()
    assert form.search.decision.action == "update" and form.register_button.disabled
    assert form.update_button.layout.display == "" and form.renew_button.layout.display == "none"
    form.update_button.click()  # shows what would change
    assert form.outcome.status == "planned" and client.get_user(old)["user_group"]["value"] == "FRIENDS"
    form.update_button.click()  # writes it
    assert form.outcome.status == "updated", form.result.value
    stored = client.get_user(old)
    assert stored["user_group"]["value"] == "COMMUNITY"
    assert DEFAULT.patron_type_of(stored) == "COMMUNITY"
    assert client.find_user(patron.primary_id) is None


def test_the_purge_date_box_shows_the_purge_date_the_note_announces(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    form.fields["affiliation"].value = "friend"
    expiry = TODAY + timedelta(days=365)
    assert form.fields["expiry_date"].value == expiry.isoformat()
    purge = (expiry + timedelta(days=DEFAULT.retention_days)).isoformat()
    assert form.fields["purge_date"].value == purge
    form.fields["expiry_date"].value = "2031-01-31"
    assert form.fields["purge_date"].value == (date(2031, 1, 31) + timedelta(days=DEFAULT.retention_days)).isoformat()
    form.fields["purge_date"].value = "2033-03-03"  # typed by staff: kept
    form.fields["expiry_date"].value = "2031-02-28"
    assert form.fields["purge_date"].value == "2033-03-03"


def test_the_sis_identifier_box_appears_for_sis_groups_and_is_checked(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    box, row = form.fields["identifier_UNIV_ID"], form.identifier_rows["identifier_UNIV_ID"]
    form.fields["affiliation"].value = "alum"
    assert row.layout.display == "none"
    form.fields["affiliation"].value = "student"
    assert row.layout.display == "" and "University ID" in form.labels["identifier_UNIV_ID"].value
    form.fields["primary_id"].value = "123456789"
    assert box.value == "123456789"  # the value the note says it takes
    box.value = "12345"
    assert "9-digit university ID" in form.messages["identifier_UNIV_ID"].value
    assert "almatools-invalid" in box._dom_classes and form.register_button.disabled
    box.value = "987654321"
    assert form.patron_form().identifiers == {"UNIV_ID": "987654321"}


def test_the_page_can_show_the_forms_banner_itself(client):
    from almatools.policy import load_policy
    from almatools.ui import build_registration_form

    form = build_registration_form(client, load_policy(), show_banner=False)
    assert form.banner not in form.children and form.dry_run in form.children
    form.dry_run.value = True  # the banner the page shows still follows the switch
    assert "DRY RUN" in form.banner.value
    shown = build_registration_form(client, load_policy())
    assert shown.banner in shown.children  # by default the form shows it


def test_a_dry_run_never_says_registered_and_the_real_run_can_follow(client):
    """After a dry run the page said "Registered" although nothing was created; and it had emptied the password
    boxes, so the real run that follows could not be clicked."""
    form = build_registration_form(client, DEFAULT, today=TODAY)
    form.dry_run.value = True
    patron = good_form(client, DEFAULT, "community")
    fill(form, patron)
    form.register_button.click()
    assert form.outcome.status == "planned"
    assert "Registered" not in form.status.value and "nothing was created" in form.status.value
    assert client.find_user(patron.primary_id) is None
    form.dry_run.value = False
    assert not form.register_button.disabled  # the passwords are still there for the real run
    form.register_button.click()
    assert form.outcome.status == "created" and "Registered" in form.status.value
    assert form.fields["password"].value == form.fields["password_confirm"].value == ""  # used once, then gone
    assert client.find_user(patron.primary_id) is not None


def test_a_patron_the_sis_extract_has_is_registered_sis_managed_never_local(client, sandbox_dir, tmp_path):
    """Seed 000, steps 4-5: someone the SIS sends (newly onboarded since the last SIS run) is registered
    SIS-managed with the SIS's identifier, so the load updates that record. The form says so; the same
    identifier as a locally managed record is refused, by the form and by the CSV, with what to do instead."""
    from almatools.registration import sis_identifiers

    from_file = sis_identifiers(str(sandbox_dir / "sis_extract.zip"))
    assert from_file and all(pid == pid.casefold() for pid in from_file)
    student = good_form(client, DEFAULT, "student")
    sis_ids = from_file | {student.primary_id.casefold()}  # the extract the SIS sends next brings this student
    form = build_registration_form(client, DEFAULT, today=TODAY, sis_ids=sis_ids)
    fill(form, student)
    form.check_button.click()
    assert form.decision is not None and not form.decision.blocked
    assert "is in the SIS extract: this SIS-managed record keeps the SIS&#x27;s identifier" in form.existing.value
    assert not form.register_button.disabled
    # The same person as a locally managed record under the SIS's identifier: refused.
    other = build_registration_form(client, DEFAULT, today=TODAY, sis_ids=sis_ids)
    fill(other, student)
    other.fields["managed"].value = "local"
    other.check_button.click()
    assert other.decision is not None and other.decision.blocked
    assert "so the SIS manages this patron: register the record as SIS-managed" in other.status.value
    assert "already has an account" not in other.status.value  # nobody has one yet
    assert other.register_button.disabled
    other.register_button.click()
    assert client.find_user(student.primary_id) is None
    # The bulk CSV refuses the local row and creates nothing.
    source = tmp_path / "students.csv"
    write_csv(source, [{"affiliation": "student", "first_name": student.first_name, "last_name": student.last_name,
                        "primary_id": student.primary_id, "expiry_date": student.expiry_date.isoformat(),
                        "email_address": student.email_address, "password": "", "managed": "local"}])
    panel = build_bulk_panel(client, DEFAULT, today=TODAY, sis_ids=sis_ids)
    panel.path.value = str(source)
    panel.run_button.click()
    assert panel.result.created == 0 and panel.result.refused + panel.result.invalid == 1
    assert "in the SIS extract" in panel.issues.value
    assert client.find_user(student.primary_id) is None


def test_bulk_issues_are_in_the_files_order_and_name_the_column_to_fix(client, tmp_path):
    """Refusals (found while sending) used to come after the invalid rows, and the field was a bare code."""
    taken = next(iter(client.search_users(user_group="COMMUNITY", max_records=1)))["primary_id"]
    fine = good_form(client, DEFAULT, "community")
    rows = [{"affiliation": "community", "first_name": "Ann", "last_name": "Other", "primary_id": taken,
             "expiry_date": fine.expiry_date.isoformat(), "email_address": "ann.other@example.org",
             "password": fine.password},  # row 2: the identifier is taken (refused while sending)
            {"affiliation": "community", "first_name": fine.first_name, "last_name": "", "primary_id": fine.primary_id,
             "expiry_date": fine.expiry_date.isoformat(), "email_address": fine.email_address,
             "password": fine.password}]  # row 3: no last name (invalid)
    source = tmp_path / "mixed.csv"
    write_csv(source, rows)
    panel = build_bulk_panel(client, DEFAULT, today=TODAY)
    panel.path.value = str(source)
    panel.run_button.click()
    assert panel.result.refused == 1 and panel.result.invalid == 1
    table = panel.issues.value.split("<tbody>")[1]
    assert table.index(f">{taken}<") < table.index(f">{fine.primary_id}<")  # row 2 before row 3
    assert "Last name (last_name)" in table and ">What to fix</th>" in panel.issues.value
    assert "the header is row 1" in panel.issues.value


def test_update_shows_old_and_new_values_before_it_writes(client):
    """The same person typed with another spelling: one click on Update used to overwrite the account's name with
    the typo. The first click now shows the change (now -> after) and writes nothing; a second click writes."""
    patron = good_form(client, DEFAULT, "community")
    old = _same_person_elsewhere(client, patron, group="FRIENDS", expiry=TODAY + timedelta(days=100))
    form = build_registration_form(client, DEFAULT, today=TODAY)
    fill(form, patron)
    form.fields["last_name"].value = patron.last_name + "s"  # a typo; the email still finds the account
    form.check_button.click()
    assert form.search.decision.action == "update"
    form.update_button.click()
    assert form.outcome.status == "planned" and "click Update the existing account again" in form.result.value
    changes = form.result.value.split("almatools-changes")[1]
    assert f">{patron.last_name}<" in changes and f">{patron.last_name}s<" in changes
    assert "User group" in changes and ">FRIENDS<" in changes and ">COMMUNITY<" in changes
    assert client.get_user(old)["last_name"] == patron.last_name  # nothing written yet
    form.fields["last_name"].value = patron.last_name  # corrected: the form changed, so it is shown again
    form.check_button.click()
    form.update_button.click()
    assert form.outcome.status == "planned" and f">{patron.last_name}s<" not in form.result.value
    form.update_button.click()
    assert form.outcome.status == "updated"
    stored = client.get_user(old)
    assert stored["last_name"] == patron.last_name and stored["user_group"]["value"] == "COMMUNITY"


def test_what_is_still_to_fix_is_listed_top_to_bottom(client):
    form = build_registration_form(client, DEFAULT, today=TODAY)
    form.fields["affiliation"].value = "community"
    form.fields["first_name"].value = "Sam"
    form.fields["primary_id"].value = "CB55500"
    form.fields["birth_date"].value = (TODAY + timedelta(days=400)).isoformat()
    form.fields["email_address"].value = "sam@example"
    form.check_button.click()
    listed = form.status.value.split("Still to fix before registering: ")[1].split(".</span>")[0].split(", ")
    assert listed[:4] == ["Last name", "Primary identifier", "Birth date", "Email address"]
    assert listed[-2:] == ["Password", "Verify password"]


def test_the_bulk_boxes_say_what_they_are_for_once_typed_into(client):
    panel = build_bulk_panel(client, DEFAULT)
    assert panel.path.description == "CSV file" and "Journal and issue file" in panel.out_dir.description
