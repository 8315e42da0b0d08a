"""Users log in with their email; `user_type` selects their plan."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class UserType(models.TextChoices):
    FREE = "free", _("Free")
    PRO = "pro", _("Pro")


class EmailUserManager(UserManager):
    def get_by_natural_key(self, username: str):
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra):
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_superuser(email=email, password=password, **extra)


class User(AbstractUser):
    email = models.EmailField(_("email address"), unique=True)
    # As long as an email, since the username defaults to the email.
    username = models.CharField(
        _("username"),
        max_length=254,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        error_messages={"unique": _("A user with this username already exists.")},
    )
    user_type = models.CharField(_("user type"), max_length=16, choices=UserType.choices, default=UserType.FREE)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    objects = EmailUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email
