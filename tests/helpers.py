"""Assertions and stream readers shared by the API tests."""

import json


def assert_error(response, status: int, *words: str) -> str:
    """The response is a JSON error with this status and a `detail` naming each of `words`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word in detail, detail
    return detail


async def read_stream(response) -> bytes:
    """The whole body of a streaming response from Django's async test client."""
    return b"".join([chunk async for chunk in response.streaming_content])


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    """Server-Sent Events as (event, data) pairs; comment lines (heartbeats) are skipped."""
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events
