"""Stored e-mail addresses in their one spelling (accounts/emails.py), so login looks them up exactly."""

from django.db import migrations

from accounts.emails import InvalidEmail, email_normalize


def normalize_emails(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    rows = list(User.objects.order_by("pk").values_list("pk", "email"))
    wanted = {}
    for pk, email in rows:
        try:
            wanted[pk] = email_normalize(email)
        except InvalidEmail:
            wanted[pk] = email
    # Rows already in their spelling keep it; of two spellings of one mailbox, the older account
    # takes the normalised form and the newer keeps its own (it cannot log in by that address).
    taken = {email for pk, email in rows if wanted[pk] == email}
    for pk, email in rows:
        if wanted[pk] != email and wanted[pk] not in taken:
            taken.add(wanted[pk])
            User.objects.filter(pk=pk).update(email=wanted[pk])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_api_keys"),
    ]

    operations = [migrations.RunPython(normalize_emails, migrations.RunPython.noop)]
