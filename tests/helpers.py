"""Assertions shared by the API tests."""


def assert_error(response, status: int, *words: str) -> str:
    """The response is a JSON error with this status and a `detail` naming each of `words`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word in detail, detail
    return detail
