"""The daily quota under 20 parallel requests against a real server (docs/reliability.md C4).

`.ci/run` runs it on SQLite and again on PostgreSQL.
"""

import asyncio

import httpx
import pytest

from tests.live_server import LiveServer, new_user_auth, upstream_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("quotas"),
        upstream_env(
            fake_openai_server,
            LLM_PROVIDER="custom",
            # Slow enough that the 20 answers overlap.
            LLM_MODEL="fake-tokens-20-20",
            QUOTA_DAILY_FREE="5",
            CHAT_PARALLEL_STREAMS="30",
        ),
    ).start()
    yield live
    live.stop()


async def ask(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> tuple[int, str, str | None]:
    async with client.stream("POST", "/chat", json={"text": text}, headers=headers) as response:
        body = (await response.aread()).decode()
        return response.status_code, body, response.headers.get("Retry-After")


def test_twenty_parallel_questions_with_a_quota_of_five_answer_exactly_five(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        headers = new_user_auth(http)

    async def burst() -> list[tuple[int, str, str | None]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(ask(client, headers, f"question {i}") for i in range(20)))

    results = asyncio.run(burst())
    assert sorted(status for status, _body, _retry in results) == [200] * 5 + [429] * 15
    for status, body, retry_after in results:
        if status == 200:
            assert body.split() == [f"t{i}" for i in range(20)]
        else:
            assert int(retry_after) > 0 and "model calls for today" in body
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/usage", json={}, headers=headers).json() == {"usage": 5}
        summary = http.get("/usage", headers=headers).json()
        assert summary["today"]["remaining"] == 0 and summary["today"]["completion_tokens"] == 100
        assert http.post("/chat", json={"text": "one more"}, headers=headers).status_code == 429
        assert http.get("/conversations", headers=headers).headers["X-Total-Count"] == "5"
