"""The provider layer against a real OpenAI-compatible server on 127.0.0.1, through the real openai SDK."""

import asyncio

import pytest

from bots.llm import complete, get_provider
from bots.llm.errors import (
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnavailable,
    StreamInterrupted,
    UnknownProvider,
)
from bots.llm.local import MODEL_ID, LocalProvider
from bots.llm.openai import aclose_clients
from bots.llm.types import ChatMessage, CompletionRequest, StreamEnd, TextDelta


def ask(model: str, text: str = "one two three four five six", **kwargs) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=(ChatMessage("system", "Be brief."), ChatMessage("user", text)),
        **kwargs,
    )


async def collect(provider, request):
    items = []
    try:
        async for item in provider.astream(request):
            items.append(item)
    finally:
        await aclose_clients()
    return items


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request, settings, upstream):
    settings.LLM_HTTP_TRANSPORT = request.param
    return request.param


async def test_stream_yields_deltas_then_usage_from_upstream(transport, upstream):
    items = await collect(get_provider("custom"), ask("fake-echo", temperature=0.3, max_tokens=50))
    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert "".join(deltas) == "Echo: one two three four five six"
    assert len(deltas) > 1
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert (end.model, end.finish_reason) == ("fake-echo", "stop")
    assert end.usage.completion_tokens == len(deltas)
    assert not end.usage.estimated
    sent = upstream.requests[-1]
    assert sent.headers["Authorization"] == "Bearer test-provider-key"
    assert sent.body["temperature"] == 0.3
    assert sent.body["max_tokens"] == 50
    assert sent.body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user"]


async def test_openai_provider_sends_max_completion_tokens(upstream):
    await collect(get_provider("openai"), ask("gpt-4o", max_tokens=10))
    assert upstream.requests[-1].body["max_completion_tokens"] == 10
    assert "max_tokens" not in upstream.requests[-1].body


async def test_missing_usage_is_estimated(upstream):
    items = await collect(get_provider("custom"), ask("fake-nousage"))
    assert items[-1].usage.estimated
    assert items[-1].usage.completion_tokens > 0


async def test_length_finish_reason_is_reported(upstream):
    items = await collect(get_provider("custom"), ask("fake-length"))
    assert items[-1].finish_reason == "length"


@pytest.mark.parametrize(
    ("status", "error_class", "http_status", "code"),
    [
        (401, ProviderError, 502, "provider_auth_failed"),
        (403, ProviderError, 502, "provider_auth_failed"),
        (404, ProviderError, 502, "provider_model_not_found"),
        (400, ProviderError, 502, "provider_refused"),
        (429, ProviderUnavailable, 503, "provider_rate_limited"),
        (500, ProviderError, 502, "provider_error"),
        (503, ProviderError, 502, "provider_error"),
    ],
)
async def test_upstream_error_status_becomes_a_clear_error(transport, upstream, status, error_class, http_status, code):
    with pytest.raises(error_class) as caught:
        await collect(get_provider("custom"), ask(f"fake-status-{status}"))
    error = caught.value
    assert (error.status_code, error.code) == (http_status, code)
    assert "custom" in error.message
    assert "test-provider-key" not in error.message
    assert "scripted" not in error.message  # the upstream's raw body stays in the server log


async def test_rate_limit_passes_retry_after(upstream):
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(get_provider("custom"), ask("fake-status-429"))
    assert caught.value.headers == {"Retry-After": "7"}


async def test_retries_are_bounded_by_settings(upstream, settings):
    settings.LLM_MAX_RETRIES = 2
    with pytest.raises(ProviderError):
        await collect(get_provider("custom"), ask("fake-status-500"))
    assert len(upstream.requests) == 3


async def test_stream_dropped_midway_delivers_chunks_then_interrupts(transport, upstream):
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        async for item in get_provider("custom").astream(ask("fake-drop-3")):
            received.append(item)
    await aclose_clients()
    assert [item.text for item in received] == ["Echo: ", "one ", "two "]
    assert caught.value.status_code == 502


async def test_stream_without_finish_reason_is_not_success(upstream):
    with pytest.raises(StreamInterrupted):
        await collect(get_provider("custom"), ask("fake-nofinish"))


async def test_stalled_upstream_times_out(transport, upstream, settings):
    settings.LLM_READ_TIMEOUT = 0.5
    with pytest.raises(ProviderTimeout) as caught:
        await collect(get_provider("custom"), ask("fake-stall"))
    assert caught.value.status_code == 504


async def test_total_timeout_bounds_a_slow_drip(upstream, settings):
    settings.LLM_TOTAL_TIMEOUT = 0.5
    received = []
    with pytest.raises(ProviderTimeout):
        async for item in get_provider("custom").astream(ask("fake-tokens-100-50")):
            received.append(item)
    await aclose_clients()
    assert 0 < len(received) < 100


async def test_unreachable_upstream_is_503(settings):
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    providers["custom"].update(base_url="http://127.0.0.1:9/v1", api_key="k")
    settings.LLM_PROVIDERS = providers
    with pytest.raises(ProviderUnavailable):
        await collect(get_provider("custom"), ask("fake-echo"))


async def test_closing_the_stream_early_closes_the_upstream_request(transport, upstream):
    stream = get_provider("custom").astream(ask("fake-tokens-50-20"))
    async for item in stream:
        if isinstance(item, TextDelta) and item.text.startswith("t2"):
            break
    await stream.aclose()
    await aclose_clients()
    assert await asyncio.to_thread(upstream.wait_for, lambda: upstream.disconnects == 1)
    assert upstream.completed == 0


def test_provider_without_key_is_not_configured_and_names_itself(settings):
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    providers["google"]["api_key"] = ""
    settings.LLM_PROVIDERS = providers
    with pytest.raises(ProviderNotConfigured) as caught:
        get_provider("google")
    assert caught.value.status_code == 503
    assert "google" in caught.value.message


def test_unknown_provider_is_rejected():
    with pytest.raises(UnknownProvider):
        get_provider("skynet")


async def test_local_provider_answers_from_context_word_by_word():
    request = CompletionRequest(
        model="anything",
        messages=(
            ChatMessage(
                "system",
                "You are a pirate who hides treasure.\n\n<documents>\n[1] (log.txt)\n"
                "Pirates hide treasure on remote islands. Parrots talk.\n</documents>",
            ),
            ChatMessage("user", "Where do pirates hide treasure?"),
        ),
    )
    items = await collect(LocalProvider(), request)
    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 5
    assert "Pirates hide treasure on remote islands." in "".join(deltas)
    assert "Parrots" not in "".join(deltas)
    assert "You are a pirate" not in "".join(deltas)  # the system prompt is instructions, never quoted
    assert items[-1].model == MODEL_ID
    assert items[-1].usage.estimated
    again = await complete(LocalProvider(), request)
    assert again.text == "".join(deltas)


async def test_local_provider_says_when_context_has_nothing_and_honours_max_tokens():
    result = await complete(LocalProvider(), ask("x", text="quantum chromodynamics"))
    assert MODEL_ID in result.text and "quantum chromodynamics" in result.text
    short = await complete(LocalProvider(), ask("x", text="quantum chromodynamics", max_tokens=3))
    assert short.finish_reason == "length"
    assert len(short.deltas) == 3


@pytest.mark.parametrize("model", ["fake-garbage-2", "fake-inband-error-2"])
async def test_a_broken_line_mid_stream_ends_it_as_interrupted_after_what_arrived(upstream, model):
    received = []
    with pytest.raises(StreamInterrupted):
        async for item in get_provider("custom").astream(ask(model)):
            received.append(item)
    await aclose_clients()
    assert [item.text for item in received] == ["Echo: ", "one "]
