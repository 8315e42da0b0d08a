"""mcp_url_check: the operator's MCP_ALLOWED_HOSTS; no private address unless listed (docs/reliability.md I4, I5)."""

import pytest

from tools.hosts import HostRefused, mcp_url_check, mcp_url_check_async, url_target


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "[fe80::1]",
        "[fd00::1]",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (a URL to refuse, not a bind)
        "[::]",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_a_star_does_not_allow_private_loopback_or_reserved_addresses(settings, host):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    with pytest.raises(HostRefused, match="private, loopback or reserved") as refused:
        mcp_url_check(f"http://{host}:8000/mcp")
    assert refused.value.code == "mcp_host_refused" and refused.value.status_code == 400
    assert "MCP_ALLOWED_HOSTS" in refused.value.message


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"])
def test_decimal_octal_and_short_address_forms_are_refused(settings, host):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    with pytest.raises(HostRefused, match="not a valid name or address"):
        mcp_url_check(f"http://{host}/mcp")


def test_a_public_address_is_allowed_by_star(settings):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    mcp_url_check("https://93.184.215.14/mcp")
    mcp_url_check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/mcp")


def test_nothing_is_allowed_by_default_and_the_detail_names_the_setting(settings):
    settings.MCP_ALLOWED_HOSTS = []
    with pytest.raises(HostRefused, match="operator lists the hosts bots may reach in the MCP_ALLOWED_HOSTS"):
        mcp_url_check("https://93.184.215.14/mcp")


def test_a_host_outside_the_list_is_refused_naming_the_host_and_the_setting(settings):
    settings.MCP_ALLOWED_HOSTS = ["mcp.example.com", ".tools.example.org"]
    with pytest.raises(HostRefused, match=r"The host evil\.example\.net is not allowed.*MCP_ALLOWED_HOSTS"):
        mcp_url_check("https://evil.example.net/mcp")
    with pytest.raises(HostRefused, match="not allowed"):
        mcp_url_check("https://example.org/mcp")


def test_names_and_suffixes_match_without_resolving(settings):
    settings.MCP_ALLOWED_HOSTS = ["MCP.example.com", ".tools.example.org", "*.wild.example.net"]
    assert url_target("https://a.wild.example.net/mcp")[1] is False
    assert url_target("https://mcp.example.com./mcp")[1] is True
    assert url_target("https://a.b.tools.example.org/mcp")[1] is False
    assert url_target("https://tools.example.org/mcp")[1] is False
    assert url_target("http://x.tools.example.org/mcp")[0].port == 80


def test_a_loopback_address_is_allowed_when_listed_by_address(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1", "[::1]"]
    mcp_url_check("http://127.0.0.1:8000/mcp")
    mcp_url_check("http://[::1]:8000/mcp")


def test_a_name_resolving_to_loopback_is_refused_unless_listed_by_name(settings):
    settings.MCP_ALLOWED_HOSTS = ["*", ".localhost"]
    with pytest.raises(HostRefused, match=r"The host localhost resolves to a private.*MCP_ALLOWED_HOSTS"):
        mcp_url_check("http://localhost:8000/mcp")
    settings.MCP_ALLOWED_HOSTS = ["localhost"]
    mcp_url_check("http://localhost:8000/mcp")


async def test_the_async_check_resolves_without_blocking_and_refuses_the_same(settings):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    with pytest.raises(HostRefused, match="resolves to a private"):
        await mcp_url_check_async("http://localhost:8000/mcp")
    settings.MCP_ALLOWED_HOSTS = ["localhost"]
    await mcp_url_check_async("http://localhost:8000/mcp")


def test_a_name_that_does_not_resolve_is_refused(settings):
    settings.MCP_ALLOWED_HOSTS = [".invalid"]
    with pytest.raises(HostRefused, match="could not be resolved"):
        mcp_url_check("https://no-such-host.invalid/mcp")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/mcp", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pass@93.184.215.14/mcp", "user name or password"),
        ("https://token@93.184.215.14/mcp", "user name or password"),
        ("https:///mcp", "no host"),
        ("https://93.184.215.14:99999/mcp", "not valid"),
        ("mcp.example.com/mcp", "http:// or https://"),
        # A secret in the query would be shown by the API and the admin: it goes in the encrypted headers.
        ("https://93.184.215.14/mcp?api_key=sk-1", "key or token in its query"),
        ("https://93.184.215.14/mcp?x=1&Token=abc", "key or token in its query"),
    ],
)
def test_malformed_urls_are_refused(settings, url, message):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    with pytest.raises(HostRefused, match=message):
        mcp_url_check(url)
