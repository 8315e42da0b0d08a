"""The admin app with Bytchat's site (config/admin.py: a throttled login)."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "config.admin.AdminSite"
