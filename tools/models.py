"""Tools a bot's model may call: MCP servers attached by the bot's owner, their tools with a policy each,
the built-in tools, and every call a model asked for, with its approval (docs/tools.md)."""

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

MODEL_NAME_MAX = 64


class ToolPolicy(models.TextChoices):
    ALLOW = "allow", _("Allow: called without asking")
    ASK = "ask", _("Ask: the user approves each call")
    DENY = "deny", _("Deny: never called")


class ToolServer(models.Model):
    """An MCP server (Streamable HTTP) attached to a bot. Its credentials (headers, a bearer token) are
    stored encrypted (tools/secrets.py) and never returned by the API."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="tool_servers", verbose_name=_("bot"))
    # A short name, unique per bot: the model sees its tools as `<name>__<tool>`.
    name = models.CharField(_("name"), max_length=32)
    url = models.URLField(_("URL"), max_length=500)
    credentials = models.TextField(_("credentials (encrypted)"), blank=True, editable=False)
    tools_fetched_at = models.DateTimeField(_("tools fetched at"), null=True, blank=True)
    fetch_error = models.CharField(_("last fetch error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tool server")
        verbose_name_plural = _("tool servers")
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["bot", "name"], name="tools_server_name_per_bot")]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class Tool(models.Model):
    """A tool a bot's model may be offered: one of a server's (as last fetched), or a built-in one
    (`server` empty: `knowledge_search`, `web_search`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="tools", verbose_name=_("bot"))
    server = models.ForeignKey(
        ToolServer, on_delete=models.CASCADE, null=True, blank=True, related_name="tools", verbose_name=_("server")
    )
    name = models.CharField(_("name"), max_length=128)
    description = models.TextField(_("description"), blank=True)
    input_schema = models.JSONField(_("input schema"), default=dict, blank=True)
    policy = models.CharField(_("policy"), max_length=8, choices=ToolPolicy, default=ToolPolicy.ASK)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tool")
        verbose_name_plural = _("tools")
        ordering = ["created_at", "name"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "server", "name"], name="tools_tool_name_per_server"),
            models.UniqueConstraint(
                fields=["bot", "name"], condition=models.Q(server__isnull=True), name="tools_builtin_once_per_bot"
            ),
        ]

    def __str__(self) -> str:
        return self.model_name

    @property
    def model_name(self) -> str:
        """The name the model calls it by: `<server>__<tool>` (at most 64 characters, as OpenAI's tool names
        are: a longer one is cut and told apart by a digest), or the built-in's own name."""
        if not self.server_id:
            return self.name
        name = f"{self.server.name}__{self.name}"
        if len(name) <= MODEL_NAME_MAX:
            return name
        return f"{name[: MODEL_NAME_MAX - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class ToolCallStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved, not run yet")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    DENIED = "denied", _("Denied by policy")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired (rejected)")


class Decision(models.TextChoices):
    POLICY = "policy", _("The tool's policy")
    USER = "user", _("The user")
    VISITOR = "visitor", _("The widget's visitor")
    EXPIRY = "expiry", _("Nobody in time")


class ToolCall(models.Model):
    """One tool call a model asked for in an answer: what was asked, how it was decided and by whom,
    and what came of it. A call with policy `ask` is the run's pending approval until decided."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(
        "chats.Message", on_delete=models.CASCADE, related_name="tool_calls", verbose_name=_("answer")
    )
    run = models.ForeignKey("chats.Run", on_delete=models.CASCADE, related_name="tool_calls", verbose_name=_("run"))
    # The model's round (its n-th call in the answer) and the call's place in it.
    round = models.PositiveSmallIntegerField(_("round"))
    index = models.PositiveSmallIntegerField(_("index"))
    # The model's id for the call (`tool_call_id`); a provider may send none.
    call_id = models.CharField(_("call id"), max_length=100, blank=True)
    # What the model wrote before it asked for this round's tools (on the round's first call), so that an
    # answer taken up by another process gives the model its own words back (chats/runs/resume.py).
    said_before = models.TextField(_("text before the call"), blank=True)
    # The position of the run's events when the call was decided through /v1, where a retried answer to
    # the same approval goes on reading (chats/api/openai.py).
    decided_after_seq = models.PositiveIntegerField(_("decided after event"), null=True, blank=True)
    tool = models.ForeignKey(
        Tool, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls", verbose_name=_("tool")
    )
    tool_name = models.CharField(_("tool name"), max_length=200)
    # As the model wrote them (or as the approver edited them); `{}` when they were not a JSON object.
    arguments = models.JSONField(_("arguments"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ToolCallStatus)
    decided_by = models.CharField(_("decided by"), max_length=10, choices=Decision, blank=True)
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by user"),
    )
    arguments_edited = models.BooleanField(_("arguments edited"), default=False)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # What the model was given back (bounded: TOOL_RESULT_MAX_CHARS), and the size of what the tool returned.
    result = models.TextField(_("result"), blank=True)
    result_chars = models.PositiveIntegerField(_("result size (characters)"), default=0)
    truncated = models.BooleanField(_("result cut"), default=False)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    citations = models.JSONField(_("citations"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tool call")
        verbose_name_plural = _("tool calls")
        ordering = ["created_at", "round", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "round", "index"], name="tools_one_call_per_slot")]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"
