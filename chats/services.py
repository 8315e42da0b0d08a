"""Writes on chats: creating chats, storing user turns and assistant replies."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.quotas import (
    QuotaCharge,
    TooManyStreams,
    daily_quota_of,
    plan_label,
    quota_refund,
    quota_take,
    rate_limit_take,
    stream_slot_acquire,
    stream_slot_release,
)
from bots.llm import get_provider
from bots.llm.types import ModelSpec, Usage
from bots.models import Bot
from bots.routing import classify_task, failover_specs, model_spec_named, route_model
from bots.selectors import bot_get
from chats.exceptions import ChatNotFound
from chats.models import Chat, Message, MessageStatus, Role, Run, Surface
from chats.notifications import session_deleted_notify, sessions_deleted_notify
from chats.runs.reconcile import runs_reconcile
from chats.runs.selectors import chat_answering
from chats.runs.services import run_rows_create
from chats.selectors import bot_chat_get
from chats.types import ReplyRequest, TurnLease
from chats.visitors import Visitor, page_check, visitor_from_token, visitor_new
from core import metrics
from core.errors import Conflict, DomainError
from knowledge.selectors import knowledge_base_ids_for_bot, knowledge_base_ids_for_owner

TITLE_CHARS = 80


def title_from_prompt(prompt: str) -> str:
    words = " ".join(prompt.split())
    return words if len(words) <= TITLE_CHARS else words[: TITLE_CHARS - 1].rstrip() + "…"


def chat_create(
    *,
    owner: User,
    surface: Surface,
    bot: Bot | None = None,
    title: str = "",
    context: dict[str, Any] | None = None,
    visitor_id: uuid.UUID | None = None,
) -> Chat:
    return Chat.objects.create(
        owner=owner, bot=bot, title=title, surface=surface, context=context or {}, visitor_id=visitor_id
    )


def chat_delete(*, user: User, chat_id: uuid.UUID | str) -> None:
    """Delete one of the user's chats and its messages; another user's chat is a 404."""
    deleted, _per_model = Chat.objects.owned_by(user).filter(pk=chat_id).delete()
    if not deleted:
        raise ChatNotFound()
    # Sockets open on it (003) send an error frame and close.
    transaction.on_commit(lambda: session_deleted_notify(chat_id=chat_id))


def chats_delete_all(*, user: User) -> int:
    """Delete every chat of the user, whichever surface made it; other users' chats are untouched."""
    deleted = Chat.objects.owned_by(user).delete()[1].get(Chat._meta.label, 0)
    transaction.on_commit(lambda: sessions_deleted_notify(user_id=user.pk))
    return deleted


def _append(chat: Chat, message: Message, *, after_current: bool = False) -> Message:
    """Insert a message and make it the chat's current node; `after_current` hangs it under the
    current node as read under the row lock, so two turns never hang off a stale node."""
    with transaction.atomic():
        # Locks the chat row, so a chat deleted meanwhile is a clear 404, not an integrity error.
        locked = Chat.objects.select_for_update().filter(pk=chat.pk).values_list("current_node_id", flat=True)
        if not locked:
            raise ChatNotFound()
        if after_current:
            message.parent_id = locked[0]
        message.save(force_insert=True)
        Chat.objects.filter(pk=chat.pk).update(current_node=message, updated_at=timezone.now())
    chat.current_node = message
    return message


def user_message_create(*, chat: Chat, content: str, parent: Message | None = None) -> Message:
    """The user's turn, under `parent`, or after the chat's current node when no parent is given."""
    return _append(chat, Message(chat=chat, parent=parent, role=Role.USER, content=content), after_current=not parent)


def assistant_message_create(
    *,
    chat: Chat,
    parent: Message,
    content: str,
    status: MessageStatus,
    model: str = "",
    finish_reason: str = "",
    usage: Usage | None = None,
    citations: list[dict[str, Any]] | None = None,
    error: str = "",
) -> Message:
    """Stores a reply once, complete or partial, with why it ended."""
    return _append(
        chat,
        Message(
            chat=chat,
            parent=parent,
            role=Role.ASSISTANT,
            content=content,
            status=status,
            model=model[:200],
            finish_reason=finish_reason[:32],
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            citations=citations or [],
            error=error[:500],
        ),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _ModelPlan:
    spec: ModelSpec
    fallbacks: tuple[ModelSpec, ...]
    routed_as: str


def _model_plan(*, bot: Bot | None, query: str, model: str | None, task_type: str | None) -> _ModelPlan:
    """The model to answer with (a named one must be available to this chat), the ones to fail over
    to (bots/routing.py; none for a model the client named), and the task type.

    A chosen model whose provider has no key fails here, before anything is stored: a configuration
    the owner must see, not an outage to route around.
    """
    configs = list(bot.model_configs.all()) if bot is not None else []
    if model:
        spec, routed_as = model_spec_named(model, configs), task_type or classify_task(query)
        fallbacks: tuple[ModelSpec, ...] = ()
    else:
        spec, routed_as = route_model(configs=configs, query=query, task_type=task_type)
        fallbacks = failover_specs(configs=configs, chosen=spec)
    get_provider(spec.provider)
    return _ModelPlan(spec=spec, fallbacks=fallbacks, routed_as=routed_as)


def _knowledge_scope(bot: Bot | None, owner: User) -> tuple[uuid.UUID, ...]:
    """A bot answers from its knowledge bases; a chat without one, from all of its owner's.

    Read here, with the rest of the turn's preparation, so a user with no knowledge costs the
    engine no search at all.
    """
    if bot is None:
        return tuple(knowledge_base_ids_for_owner(owner_id=owner.pk))
    return tuple(knowledge_base_ids_for_bot(bot_id=bot.pk))


def turn_lease_release(lease: TurnLease, *, answered: bool = False) -> None:
    """Give back what a turn holds: its stream slot, and its quota charge unless the model answered
    (accounts/quotas.py)."""
    stream_slot_release(user_id=lease.holder, member=str(lease.run_id))
    if lease.charge is not None and not answered:
        quota_refund(lease.charge)


def _lease_take(
    user: User,
    *,
    chat: Chat | None,
    new_chat: Callable[[], Chat] | None = None,
    stream_holder: str | None = None,
) -> tuple[TurnLease, Chat]:
    """A stream slot (the user's, or `stream_holder`'s) and one model call of the user's quota today,
    then the chat (`new_chat()` when None); on any refusal, what was taken is given back and
    nothing is charged."""
    lease = TurnLease(user_id=user.pk, stream_holder=stream_holder)
    try:
        stream_slot_acquire(user_id=lease.holder, member=str(lease.run_id))
    except TooManyStreams:
        metrics.stream_slot_refusals.labels("visitor" if stream_holder else plan_label(user)).inc()
        raise
    try:
        lease = dataclasses.replace(lease, charge=quota_take(user=user))
        if chat is None and new_chat is not None:
            chat = new_chat()
    except BaseException:
        turn_lease_release(lease)
        raise
    return lease, chat


def _chat_busy() -> Conflict:
    return Conflict(
        _("An answer is already being generated in this chat; wait for it to finish or stop it."),
        code="chat_busy",
    )


class _ChatMovedOn(Exception):
    """The chat's current node changed (or the chat went) between reading it and storing the turn."""


def _run_open(
    lease: TurnLease,
    *,
    chat: Chat,
    surface: str,
    question: Message | None = None,
    prompt: str = "",
    parent: Message | None = None,
) -> tuple[Message, Run]:
    """The question (`question` already stored, or stored now from `prompt`, under `parent` or else
    after the chat's current node), the answer's message and its run, in one transaction of three
    statements. A chat already answering is a 409, unless the run answering it belongs to a process
    that died (its lease lapsed): that run is interrupted and this one starts.

    No lock on the chat's row: the question goes under the current node as `chat` was read, and the
    chat moves to the answer only if its current node is still that one; if it moved on meanwhile
    (an edit, say), the chat is read again and the turn stored again."""
    for _attempt in range(3):
        expected = chat.current_node_id
        follows_current = question is None and parent is None
        try:
            with transaction.atomic():
                asked = question
                if asked is None:
                    asked = Message(chat=chat, parent=parent, role=Role.USER, content=prompt)
                    if follows_current:
                        asked.parent_id = expected
                answer, run = run_rows_create(
                    chat=chat, question=asked, surface=surface, run_id=lease.run_id, new_question=question is None
                )
                moved = Chat.objects.filter(pk=chat.pk)
                if follows_current:
                    moved = moved.filter(current_node_id=expected)
                if not moved.update(current_node=answer, updated_at=timezone.now()):
                    raise _ChatMovedOn()
        except _ChatMovedOn:
            current = Chat.objects.filter(pk=chat.pk).values_list("current_node_id", flat=True)
            if not current:
                raise ChatNotFound() from None
            chat.current_node_id = current[0]
        except IntegrityError:
            if not Chat.objects.filter(pk=chat.pk).exists():
                raise ChatNotFound() from None
            if not runs_reconcile(chat_id=chat.pk):
                raise _chat_busy() from None
        else:
            chat.current_node = answer
            return asked, run
    raise _chat_busy()


def turn_start(
    *,
    user: User,
    prompt: str,
    chat: Chat | None = None,
    bot: Bot | None = None,
    surface: Surface = Surface.BYTCHAT,
    title: str = "",
    parent: Message | None = None,
    model: str | None = None,
    task_type: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    autocontinue: bool = False,
    web_search: bool = False,
    stream_holder: str | None = None,
    history: Sequence[tuple[str, str]] = (),
    stop: tuple[str, ...] = (),
) -> tuple[ReplyRequest, str]:
    """Everything before an answer: pick the model, take a stream slot, a unit of the daily quota and
    the chat's answer lock, store the question. With `chat`, a new turn in it; without, a new chat
    (with `bot` and `title`, or a title made from the prompt). `surface` is the one asking.

    Returns what the engine needs and the task type the prompt was routed as. Refusals (model not
    available, provider not configured, too many streams, quota used up, chat busy) happen before
    anything is stored or charged.
    """
    if chat is not None and (bot is None or chat.bot_id != bot.pk):
        # The chat's own bot; a caller's bot that is the chat's (001) already holds its configs: one query less.
        bot = chat.bot
    plan = _model_plan(bot=bot, query=prompt, model=model, task_type=task_type)

    def new_chat() -> Chat:
        chat = chat_create(owner=user, bot=bot, surface=surface, title=title or title_from_prompt(prompt))
        _history_import(chat, history)
        return chat

    lease, chat = _lease_take(user, chat=chat, new_chat=new_chat, stream_holder=stream_holder)
    try:
        user_message, run = _run_open(lease, chat=chat, surface=surface, prompt=prompt, parent=parent)
    except BaseException:
        turn_lease_release(lease)
        raise
    reply = ReplyRequest(
        chat=chat,
        user_message=user_message,
        spec=plan.spec,
        fallbacks=plan.fallbacks,
        surface=surface,
        system_prompt=bot.system_prompt if bot is not None else "",
        temperature=temperature,
        max_tokens=max_tokens,
        stop=stop,
        lease=lease,
        knowledge_base_ids=_knowledge_scope(bot, user),
        autocontinue=autocontinue,
        web_search=web_search,
        run=run,
    )
    return reply, plan.routed_as


def turn_resume(*, run: Run) -> ReplyRequest:
    """What the engine needs to go on with a run taken over after its process died while it waited for
    a tool approval (chats/runs/resume.py): the chat's bot, routed again for the question (the model that
    started the answer is not stored until its end), with each further model call charged to the owner."""
    chat, owner = run.chat, run.owner
    bot = chat.bot
    plan = _model_plan(bot=bot, query=run.question.content, model=None, task_type=None)
    holder = f"visitor:{chat.visitor_id}" if chat.visitor_id else None
    lease = TurnLease(user_id=owner.pk, run_id=run.pk, stream_holder=holder)
    with contextlib.suppress(TooManyStreams):  # admitted when it started: it is finished, slot or not
        stream_slot_acquire(user_id=lease.holder, member=str(run.pk))
    return ReplyRequest(
        chat=chat,
        user_message=run.question,
        spec=plan.spec,
        fallbacks=plan.fallbacks,
        surface=run.surface,
        system_prompt=bot.system_prompt if bot is not None else "",
        lease=lease,
        knowledge_base_ids=_knowledge_scope(bot, owner),
        run=run,
        resumed=True,
        quota_basis=QuotaCharge(user_id=owner.pk, day=timezone.localdate(), limit=daily_quota_of(owner)),
    )


def _history_import(chat: Chat, history: Sequence[tuple[str, str]]) -> None:
    """Turns a client sent along (the /v1 API is stateless), as one branch under the new chat's root;
    assistant turns are the client's (`authored_by_client`), not the model's."""
    if not history:
        return
    messages: list[Message] = []
    for role, content in history:
        parent = messages[-1] if messages else None
        messages.append(
            Message(
                chat=chat,
                parent=parent,
                role=role,
                content=content,
                status=MessageStatus.COMPLETE,
                authored_by_client=role == Role.ASSISTANT,
            )
        )
    Message.objects.bulk_create(messages)
    Chat.objects.filter(pk=chat.pk).update(current_node=messages[-1])
    chat.current_node = messages[-1]


def answer_start(
    *, user: User, chat: Chat, user_message: Message, surface: Surface = Surface.CHATS, web_search: bool = False
) -> ReplyRequest:
    """An answer to a question already stored (004 `inference`): the same refusals as `turn_start`."""
    plan = _model_plan(bot=chat.bot, query=user_message.content, model=None, task_type=None)
    lease, chat = _lease_take(user, chat=chat)
    try:
        _question, run = _run_open(lease, chat=chat, surface=surface, question=user_message)
    except BaseException:
        turn_lease_release(lease)
        raise
    return ReplyRequest(
        chat=chat,
        user_message=user_message,
        spec=plan.spec,
        fallbacks=plan.fallbacks,
        surface=surface,
        system_prompt=chat.bot.system_prompt if chat.bot is not None else "",
        lease=lease,
        knowledge_base_ids=_knowledge_scope(chat.bot, user),
        web_search=web_search,
        run=run,
    )


def bot_chat_start(
    *,
    user: User,
    bot_id: str,
    query: str,
    task_type: str | None = None,
    chat_id: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    surface: Surface = Surface.BYTCHAT,
) -> tuple[ReplyRequest, str]:
    """A turn with one of the user's bots (001): in the given chat with that bot, or a new one."""
    if chat_id:
        chat = bot_chat_get(user=user, bot_id=bot_id, chat_id=chat_id)
        bot = chat.bot
    else:
        chat, bot = None, bot_get(user=user, bot_id=bot_id)
    return turn_start(
        user=user,
        prompt=query,
        chat=chat,
        bot=bot,
        surface=surface,
        task_type=task_type,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def chat_rename(*, chat: Chat, title: str) -> Chat:
    """A new title; `updated_at` is the server's clock, whatever a client sends (docs/reliability.md B5)."""
    now = timezone.now()
    if not Chat.objects.filter(pk=chat.pk).update(title=title, updated_at=now):
        raise ChatNotFound()
    chat.title, chat.updated_at = title, now
    return chat


def client_message_create(*, chat: Chat, role: Role, content: str) -> Message:
    """A turn the client writes into a chat (004 `conversations/create`), after its current node.

    A Human turn is a user message. An Assistant turn is stored as the client's, not the model's
    (`authored_by_client`): the documented API lets clients write both sides, and the flag keeps
    it apart from model output (docs/reliability.md B6). Refused with 409 while the chat is answering, so
    nothing is hung under a node the engine is writing to.
    """
    if role not in (Role.USER, Role.ASSISTANT):
        raise DomainError(_("Role must be Human or Assistant."), code="invalid_role")
    if chat_answering(chat.pk):
        raise Conflict(
            _("An answer is being generated in this chat; add messages once it is finished."), code="chat_busy"
        )
    if role == Role.USER:
        return user_message_create(chat=chat, content=content)
    message = Message(
        chat=chat, role=Role.ASSISTANT, content=content, status=MessageStatus.COMPLETE, authored_by_client=True
    )
    return _append(chat, message, after_current=True)


# Session business data (003 `context`, docs/reliability.md G6): a flat object of numbers under short keys.
CONTEXT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# The largest integer a JavaScript client reads exactly (Number.MAX_SAFE_INTEGER).
CONTEXT_INT_LIMIT = 2**53 - 1


def _invalid_context(message: str) -> DomainError:
    return DomainError(message, code="invalid_context")


def context_validate(changes: Any) -> dict[str, Any]:
    """The context as sent, or a 400 naming the first bad key: keys are identifiers of at most 64
    characters; values finite numbers, booleans or null; at most CHAT_CONTEXT_MAX_KEYS keys."""
    if not isinstance(changes, Mapping):
        raise _invalid_context(_("context must be a JSON object whose values are numbers, booleans or null."))
    if len(changes) > settings.CHAT_CONTEXT_MAX_KEYS:
        raise _invalid_context(
            _("context may have at most %(n)d keys.") % {"n": settings.CHAT_CONTEXT_MAX_KEYS},
        )
    for key, value in changes.items():
        if not isinstance(key, str) or not CONTEXT_KEY.fullmatch(key):
            shown = str(key) if len(str(key)) <= 64 else str(key)[:64] + "…"
            raise _invalid_context(
                _(
                    'context: "%(key)s" is not a valid key; use letters, digits and underscores, '
                    "at most 64 characters, not starting with a digit."
                )
                % {"key": shown}
            )
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int) and abs(value) <= CONTEXT_INT_LIMIT:
            continue
        if isinstance(value, float) and math.isfinite(value):
            continue
        raise _invalid_context(
            _("context.%(key)s must be a number, a boolean or null (text, lists and objects are refused).")
            % {"key": key}
        )
    return dict(changes)


def context_merge(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` over `current`; a null value removes its key."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > settings.CHAT_CONTEXT_MAX_KEYS:
        raise _invalid_context(
            _("context would have %(count)d keys; at most %(n)d are kept.")
            % {"count": len(merged), "n": settings.CHAT_CONTEXT_MAX_KEYS}
        )
    return merged


def session_create(*, owner: User, bot: Bot | None = None, context: Mapping[str, Any] | None = None) -> Chat:
    """A chat opened through the 003 surface, with its validated business data."""
    data = context_merge({}, context_validate(context)) if context is not None else {}
    return chat_create(owner=owner, surface=Surface.SESSIONS, bot=bot, context=data)


def chat_context_update(*, chat: Chat, changes: Any) -> dict[str, Any]:
    """Merge validated business data into the chat's context under its row lock; returns the new context."""
    changes = context_validate(changes)
    with transaction.atomic():
        current = Chat.objects.select_for_update().filter(pk=chat.pk).values_list("context", flat=True).first()
        if current is None:
            raise ChatNotFound()
        merged = context_merge(current or {}, changes)
        Chat.objects.filter(pk=chat.pk).update(context=merged, updated_at=timezone.now())
    chat.context = merged
    return merged


def widget_session_start(
    *, bot: Bot, visitor_token: str | None, origin: str | None, own_origin: str, client: str
) -> tuple[Chat, Visitor, str]:
    """A new chat of a public bot's visitor, from a page the bot allows (403 otherwise), at most
    WIDGET_SESSIONS_RATE per client address. The browser's visitor is kept if its token is for this
    bot under its current key; else a new visitor. Returns the chat, the visitor and the page origin."""
    page = page_check(bot, origin, own_origin=own_origin, required=True)
    rate_limit_take(key=f"addr:{client}", scope="widget-sessions", rate=settings.WIDGET_SESSIONS_RATE)
    visitor = visitor_from_token(visitor_token, bot=bot) or visitor_new(bot)
    chat = chat_create(owner=bot.owner, bot=bot, surface=Surface.WIDGET, visitor_id=visitor.id)
    return chat, visitor, page
