"""Who may open a chat-session socket (003): tickets, access tokens, Origin, ownership, per-user limits."""

import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core import signing
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from chats.models import Chat, Surface
from chats.ws.tickets import SALT, ticket_issue
from tests.helpers import ws_refused, ws_session, ws_session_path

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _thread_connections_closed():
    """The sync thread's database connection is closed after each test, so PostgreSQL's test
    database can be dropped at the end of the run."""
    yield
    await database_sync_to_async(lambda: None)()


@pytest.fixture
def other_chat(make_chat, other_user):
    return make_chat(owner=other_user)


def path_with(chat, **query) -> str:
    return ws_session_path(chat, **query)


async def test_a_fresh_ticket_opens_the_socket_once(chat, user):
    path = await sync_to_async(ws_session_path)(chat, user)
    session = ws_session(path)
    async with session:
        assert session.greeting == {
            "type": "system",
            "content": "Connection established. How can I help you today?",
            "session_id": str(chat.pk),
        }
    assert await ws_refused(path), "a ticket must open one socket only"


async def test_an_expired_ticket_is_refused(chat, user):
    past = signing.b62_encode(int(time.time()) - 120)
    with mock.patch.object(signing.TimestampSigner, "timestamp", lambda self: past):
        ticket = ticket_issue(user_id=user.pk, session_id=chat.pk)
    assert await ws_refused(path_with(chat, ticket=ticket))


def tampered(ticket: str) -> list[str]:
    payload, timestamp, signature = ticket.rsplit(":", 2)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = signing.dumps({"s": "x", "u": 1, "n": "n"}, key="another-secret-key-" * 3, salt=SALT)
    return [f"{payload}:{timestamp}:{flipped}", f"{payload}x:{timestamp}:{signature}", forged, "garbage", ""]


async def test_tampered_forged_or_garbage_tickets_are_refused(chat, user):
    for bad in tampered(ticket_issue(user_id=user.pk, session_id=chat.pk)):
        assert await ws_refused(path_with(chat, ticket=bad) if bad else f"/chat/ws/{chat.pk}"), bad


async def test_a_ticket_signed_with_our_key_for_another_user_is_refused_on_this_session(chat, other_user):
    # Even a validly signed ticket naming someone else cannot open a session that is not theirs.
    assert await ws_refused(path_with(chat, ticket=ticket_issue(user_id=other_user.pk, session_id=chat.pk)))


async def test_a_ticket_for_one_session_does_not_open_another(user):
    first = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    second = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    ticket = ticket_issue(user_id=user.pk, session_id=first.pk)
    assert await ws_refused(f"/chat/ws/{second.pk}?ticket={ticket}")
    # The refused attempt did not use it up.
    async with ws_session(f"/chat/ws/{first.pk}?ticket={ticket}"):
        pass


async def test_another_users_session_is_refused_with_their_own_valid_credentials(chat, other_user):
    token = await sync_to_async(lambda: str(AccessToken.for_user(other_user)))()
    assert await ws_refused(path_with(chat, token=token))
    assert await ws_refused(path_with(chat, ticket=ticket_issue(user_id=other_user.pk, session_id=chat.pk)))


async def test_an_inactive_users_ticket_is_refused(chat, user):
    ticket = ticket_issue(user_id=user.pk, session_id=chat.pk)
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    assert await ws_refused(path_with(chat, ticket=ticket))


async def test_an_access_token_in_the_query_opens_the_socket(chat, user):
    token = await sync_to_async(lambda: str(AccessToken.for_user(user)))()
    async with ws_session(path_with(chat, token=token)) as socket:
        await socket.send_json_to({"type": "message", "content": "hola"})
        assert (await socket.receive_json_from(timeout=10))["type"] == "chunk"


def expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=5))
    return str(token)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(expired_access, id="expired"),
        pytest.param(lambda user: str(RefreshToken.for_user(user)), id="refresh-not-access"),
        pytest.param(lambda user: "not.a.jwt", id="garbage"),
        pytest.param(lambda user: str(AccessToken.for_user(user))[:-2] + "xx", id="bad-signature"),
    ],
)
async def test_bad_access_tokens_are_refused(chat, user, make_token):
    token = await sync_to_async(make_token)(user)
    assert await ws_refused(path_with(chat, token=token))


async def test_a_token_issued_before_a_password_change_is_refused(chat, user):
    token = await sync_to_async(lambda: str(AccessToken.for_user(user)))()
    await sync_to_async(user.set_password)("otra-clave-segura-456")
    await user.asave(update_fields=["password"])
    assert await ws_refused(path_with(chat, token=token))


async def test_no_credentials_or_an_unknown_path_are_refused(chat):
    assert await ws_refused(f"/chat/ws/{chat.pk}")
    assert await ws_refused(f"/chat/ws/{chat.pk}?user={chat.owner_id}")
    assert await ws_refused("/ws/chat/anything")
    assert await ws_refused("/chat/ws/not-a-uuid")


def origin_headers(origin: bytes | None, host: bytes | None = b"127.0.0.1:8000") -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in ((b"host", host), (b"origin", origin)) if value is not None]


async def test_an_origin_is_exactly_the_servers_own_or_a_listed_one_or_none(chat, user, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    accepted = [
        origin_headers(None),
        origin_headers(b"http://127.0.0.1:8000"),  # the page this server served
        origin_headers(b"http://localhost", host=b"localhost"),
        origin_headers(b"https://localhost:443", host=b"localhost"),  # a default port, spelt out
        origin_headers(b"https://app.example.com"),
        origin_headers(b"https://APP.example.com:443"),
    ]
    for headers in accepted:
        path = await sync_to_async(ws_session_path)(chat, user)
        async with ws_session(path, headers=headers):
            pass
    refused = [
        origin_headers(b"http://127.0.0.1:8001"),  # another port of an allowed host
        origin_headers(b"http://127.0.0.1:3000", host=b"127.0.0.1:8000"),
        origin_headers(b"http://localhost:8000"),  # another host than the one asked
        origin_headers(b"http://127.0.0.1:8000", host=None),
        origin_headers(b"http://evil.example", host=b"evil.example"),  # not in ALLOWED_HOSTS
        origin_headers(b"https://app.example.com:8443"),
        origin_headers(b"http://app.example.com"),
        origin_headers(b"http://evil.example:80@127.0.0.1:8000"),  # userinfo
        origin_headers(b"http://127.0.0.1:8000@evil.example"),
        origin_headers(b"http://127.0.0.1:8000/"),  # a path
        origin_headers(b"http://127.0.0.1:8000/x"),
        origin_headers(b"http://127.0.0.1:8000?x"),
        origin_headers(b"https://evil.example"),
        origin_headers(b"https://app.example.com.evil.example"),
        origin_headers(b"null"),
        origin_headers(b"http://[bad"),
        origin_headers(b"\xff\xfe"),
        origin_headers(b" http://127.0.0.1:8000"),
        [*origin_headers(b"http://127.0.0.1:8000"), (b"origin", b"https://evil.example")],
    ]
    for headers in refused:
        path = await sync_to_async(ws_session_path)(chat, user)
        assert await ws_refused(path, headers=headers), headers
        # Refused before the ticket was looked at: it still opens a socket without that Origin.
        async with ws_session(path):
            pass


async def test_sockets_per_user_are_limited_and_freed_on_close(chat, user, settings):
    settings.WS_PER_USER = 2
    paths = [await sync_to_async(ws_session_path)(chat, user) for _ in range(4)]
    async with ws_session(paths[0]), ws_session(paths[1]):
        extra = ws_session(paths[2]).communicator
        connected, _subprotocol = await extra.connect(timeout=10)
        assert connected
        error = await extra.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == "too_many_connections"
        assert await extra.receive_output(timeout=10) == {"type": "websocket.close", "code": 4429}
        await extra.disconnect(timeout=10)
    # Both slots were given back when those sockets closed.
    async with ws_session(paths[3]), ws_session(await sync_to_async(ws_session_path)(chat, user)):
        pass


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (lambda chat, user, other: {}, "not_authenticated"),
        (lambda chat, user, other: {"token": str(RefreshToken.for_user(user))}, "token_not_valid"),
        (lambda chat, user, other: {"token": str(AccessToken.for_user(other))}, "chat_not_found"),
        (lambda chat, user, other: {"ticket": ticket_issue(user_id=other.pk, session_id=chat.pk)}, "chat_not_found"),
        (
            lambda chat, user, other: {"ticket": ticket_issue(user_id=user.pk, session_id=uuid.uuid4())},
            "ticket_wrong_session",
        ),
    ],
)
def test_each_refusal_names_its_reason(chat, user, other_user, query, code):
    from urllib.parse import urlencode

    from chats.ws.auth import socket_authenticate
    from core.errors import DomainError

    query_string = urlencode(query(chat, user, other_user)).encode()
    with pytest.raises(DomainError) as refused:
        socket_authenticate(query_string=query_string, session_id=chat.pk)
    assert refused.value.code == code
