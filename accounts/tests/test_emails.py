"""One mailbox is one account: every spelling of an address registers, logs in and is found as one."""

import pytest
from django.core.management import call_command

from accounts.emails import InvalidEmail, email_normalize
from accounts.models import User
from accounts.selectors import user_by_email
from conftest import PASSWORD
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def register(client, email: str):
    return client.post("/users/", {"email": email, "password": PASSWORD}, format="json")


def login(client, email: str):
    return client.post("/token", {"username": email, "password": PASSWORD}, format="json")


@pytest.mark.parametrize(
    "twin",
    [
        "probe@pro\u00adbe.test",  # soft hyphen
        "probe@pro\u200bbe.test",  # zero-width space
        "probe@pro\u2060be.test",  # word joiner
        "probe@probe\ufe0f.test",  # variation selector
        "probe@PROBE.TEST",
        "Probe@\uff50\uff52\uff4f\uff42\uff45.test",  # fullwidth letters
    ],
)
def test_an_invisible_or_case_variant_of_a_domain_is_the_same_account(anon, twin):
    assert register(anon, "probe@probe.test").status_code == 200
    assert_error(register(anon, twin), 400, "already exists")
    assert User.objects.count() == 1
    # And it logs in to that one account.
    assert login(anon, twin).status_code == 200


def test_an_address_with_dotted_capital_i_logs_in_with_the_string_it_registered_with(anon):
    email = "İlker@İstanbul.test"
    created = register(anon, email)
    assert created.status_code == 200
    assert login(anon, email).status_code == 200
    assert login(anon, email.lower()).status_code == 200
    assert user_by_email(email=email).pk == created.json()["id"]


def test_an_internationalised_domain_is_stored_in_punycode_and_found_in_either_spelling(anon):
    assert register(anon, "ana@Bücher.example").json()["email"] == "ana@xn--bcher-kva.example"
    assert login(anon, "ana@xn--bcher-kva.example").status_code == 200
    assert login(anon, "ANA@bücher.example").status_code == 200


@pytest.mark.parametrize(
    "email",
    ["pro\u00adbe@probe.test", "pro\u200bbe@probe.test", "pro\x00be@probe.test", "probe\u202e@probe.test"],
)
def test_an_invisible_or_control_character_in_the_local_part_is_a_400_naming_email(anon, email):
    assert_error(register(anon, email), 400, "email")
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["probe@exa\u200dmple.test", "probe@exa\u200cmple.test"])
def test_a_joiner_in_the_domain_is_refused(anon, email):
    assert_error(register(anon, email), 400, "email")
    assert not User.objects.exists()


def test_the_normal_form_is_idempotent_and_refuses_what_is_not_an_address():
    for raw in ("İlker@İstanbul.test", "x@pro\u00adbe.test", "\u210ci@Bücher.example", "a@[127.0.0.1]"):
        once = email_normalize(raw)
        assert email_normalize(once) == once
    for bad in ("", "no-at-sign", "@probe.test", "probe@", "a\u00ad@x.test", "x@" + "a" * 250 + "é.test"):
        with pytest.raises(InvalidEmail):
            email_normalize(bad)


def test_the_admin_form_and_createsuperuser_store_the_same_spelling(admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "Staff@pro\u00adbe.test",
            "username": "staff-probe",
            "user_type": "free",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302, response.content
    assert User.objects.filter(email="staff@probe.test").exists()
    # A second spelling of the mailbox is refused by the form, not stored as another account.
    again = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "staff@PRO\u200bBE.test",
            "username": "staff-probe-2",
            "user_type": "free",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert again.status_code == 200 and b"already exists" in again.content
    call_command("createsuperuser", email="Root@Bücher.example", username="root", interactive=False)
    assert User.objects.filter(email="root@xn--bcher-kva.example", is_superuser=True).exists()


def test_the_data_migration_normalises_stored_addresses_and_keeps_the_older_of_two_spellings():
    from importlib import import_module

    from django.apps import apps

    older = User.objects.create(username="older", email="x")
    newer = User.objects.create(username="newer", email="y")
    plain = User.objects.create(username="plain", email="z")
    User.objects.filter(pk=older.pk).update(email="Ann@PRO\u00adBE.test")
    User.objects.filter(pk=newer.pk).update(email="ann@pro\u200bbe.test")
    User.objects.filter(pk=plain.pk).update(email="İlker@İstanbul.test")
    migration = import_module("accounts.migrations.0004_emails_normalized")
    migration.normalize_emails(apps, None)
    assert User.objects.get(pk=older.pk).email == "ann@probe.test"
    assert User.objects.get(pk=newer.pk).email == "ann@pro\u200bbe.test"
    assert User.objects.get(pk=plain.pk).email == email_normalize("İlker@İstanbul.test")
