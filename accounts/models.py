"""Users log in with their email; `user_type` selects their plan."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from accounts.emails import InvalidEmail, email_normalize


class UserType(models.TextChoices):
    FREE = "free", _("Free")
    PRO = "pro", _("Pro")


class EmailUserManager(UserManager):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """The stored spelling (accounts/emails.py); InvalidEmail for an address that is not one."""
        return email_normalize(email or "")

    def get_by_natural_key(self, username: str):
        # Exact on the stored spelling: `iexact` folds ASCII only on SQLite (İ, ß...).
        try:
            email = email_normalize(username)
        except InvalidEmail:
            raise self.model.DoesNotExist from None
        return self.get(email=email)

    def create_user(self, email: str, password: str | None = None, **extra):
        email = self.normalize_email(email)
        extra.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        email = self.normalize_email(email)
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
    user_type = models.CharField(_("user type"), max_length=16, choices=UserType, default=UserType.FREE)
    daily_quota = models.PositiveIntegerField(
        _("daily quota"),
        null=True,
        blank=True,
        help_text=_("Model calls a day. Empty: the default of the user type (staff: unlimited)."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    objects = EmailUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        # AbstractUser.clean normalises the email through the manager (the admin's forms call it).
        try:
            super().clean()
        except InvalidEmail as exc:
            raise ValidationError({"email": exc.message}) from exc


class DailyUsage(models.Model):
    """The quota counter: model calls charged to a user on one day, answers still streaming included."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="daily_usage", verbose_name=_("user"))
    day = models.DateField(_("day"))
    requests = models.PositiveIntegerField(_("model calls"), default=0)

    class Meta:
        verbose_name = _("daily usage")
        verbose_name_plural = _("daily usage")
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="accounts_dailyusage_user_day")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.requests}"


class CallOutcome(models.TextChoices):
    COMPLETE = "complete", _("Complete")
    ERROR = "error", _("Failed midway")
    CANCELLED = "cancelled", _("Cancelled midway")


class ModelCall(models.Model):
    """One model call charged to a user: which model, through which surface, and its tokens."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="model_calls", verbose_name=_("user"))
    day = models.DateField(_("day"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    surface = models.CharField(_("surface"), max_length=20)
    model = models.CharField(_("model"), max_length=200)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    # The provider sent no usage (or the call broke before it did): the tokens are estimated.
    estimated = models.BooleanField(_("estimated"), default=False)
    outcome = models.CharField(_("outcome"), max_length=16, choices=CallOutcome, default=CallOutcome.COMPLETE)

    class Meta:
        verbose_name = _("model call")
        verbose_name_plural = _("model calls")
        indexes = [models.Index(fields=["user", "day"]), models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.model} ({self.surface}, {self.day})"


class ApiKey(models.Model):
    """A personal API key: `Authorization: Bearer byt_…` instead of a JWT (OpenAI clients, scripts).

    Only a SHA-256 digest is stored: the key is 32 random bytes, so a fast hash is as safe as a slow
    one and lets a request be authenticated with one indexed lookup. The key is shown once.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=100)
    # The key's first characters, to tell keys apart in lists.
    prefix = models.CharField(_("prefix"), max_length=16)
    digest = models.CharField(_("SHA-256"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
