"""The OpenAPI schema documents every API route, and the docs pages render without auth."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

# The seed's surfaces, as drf-spectacular spells them: a regex route ending in `/?` is emitted
# with its trailing slash (`/token/`), and both spellings are served.
SEED_PATHS = {
    "/": {"get"},
    "/users/": {"post"},
    "/users/me": {"get"},
    "/token": {"post"},
    "/token/refresh": {"post"},
    "/token/revoke": {"post"},
    "/bots/": {"get", "post"},
    "/bots/{bot_id}": {"get", "put", "patch", "delete"},
    "/bots/{bot_id}/models/": {"get", "post"},
    "/bots/{bot_id}/models/{config_id}": {"delete"},
    "/chat/{bot_id}": {"post"},
}
# Pages for people, not API: the admin, the API docs, the widget demo.
NOT_API = ("admin/", "api/schema", "api/docs", "api/redoc", "demo")
HTTP_METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}


@pytest.fixture
def schema(anon):
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    return response.json()


def route_template(regex: str) -> str:
    """`^bots/(?P<bot_id>[0-9a-f-]...)/?$` -> `bots/{bot_id}`."""
    regex = regex.lstrip("^").rstrip("$")
    regex = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex)
    return regex.replace("/?", "")


def resolver_routes(patterns=None, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        text = prefix + route_template(str(entry.pattern))
        if text.startswith(NOT_API):
            continue
        if isinstance(entry, URLResolver):
            routes |= resolver_routes(entry.url_patterns, text)
        elif isinstance(entry, URLPattern) and entry.name != "not-found":
            routes.add("/" + text)
    return routes


def test_schema_is_public_json_and_valid_openapi(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Bytchat API"
    validate_schema(schema)


def test_schema_lists_every_seed_endpoint_with_its_methods(schema):
    for path, methods in SEED_PATHS.items():
        assert path in schema["paths"], sorted(schema["paths"])
        assert methods <= set(schema["paths"][path]), (path, sorted(schema["paths"][path]))


def test_every_api_route_in_the_url_resolver_is_in_the_schema(schema):
    documented = {path.rstrip("/") or "/" for path in schema["paths"]}
    routes = {path.rstrip("/") or "/" for path in resolver_routes()}
    assert routes, "no routes found"
    assert routes - documented == set()


def test_protected_operations_declare_bearer_auth_and_public_ones_none(schema):
    assert "security" not in schema  # no global requirement: each operation says what it needs
    public = {("/", "get"), ("/users/", "post"), ("/token", "post"), ("/token/refresh", "post")}
    public |= {("/token/revoke", "post"), ("/widget/sessions", "post"), ("/healthz", "get"), ("/readyz", "get")}
    public |= {("/s/{token}", "get"), ("/shares/public/{token}", "get")}  # a share link's token is its key
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            security = operation.get("security", [])
            if (path, method) in public:
                assert not any(security), (path, method, security)
            elif path.startswith("/widget/"):
                assert security == [{"visitorAuth": []}], (path, method, security)
            elif path == "/metrics":
                assert security == [{"metricsToken": []}], (path, method, security)
            else:
                assert {"jwtAuth": []} in security, (path, method, security)


def test_bot_id_is_a_uuid_path_parameter_on_every_bot_operation(schema):
    bot_paths = [path for path in schema["paths"] if "{bot_id}" in path]
    assert len(bot_paths) >= 4
    for path in bot_paths:
        for method, operation in schema["paths"][path].items():
            [parameter] = [p for p in operation["parameters"] if p["name"] == "bot_id"]
            assert parameter["in"] == "path" and parameter["required"] is True, (path, method)
            uuid_schema = parameter["schema"]
            assert uuid_schema.get("format") == "uuid" or "[0-9a-fA-F]{8}-" in uuid_schema["pattern"], (path, method)


def test_schema_without_trailing_slash_is_also_served(anon):
    assert anon.get("/api/schema?format=json").status_code == 200


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_render_html_without_auth(anon, path):
    response = anon.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"/api/schema" in response.content


# -- error answers (issue 12) ---------------------------------------------------------------------


def error_schema_of(schema: dict, path: str, method: str, status: str) -> dict:
    response = schema["paths"][path][method]["responses"][status]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/bots/", "get", {"401"}),
        ("/bots/", "post", {"400", "401", "403", "413", "415"}),
        ("/bots/{bot_id}", "get", {"401", "404"}),
        ("/bots/{bot_id}", "patch", {"400", "401", "404", "413", "415"}),
        ("/bots/{bot_id}/models/", "post", {"400", "401", "404", "409"}),
        ("/chats/", "get", {"400", "401"}),
        ("/token", "post", {"400", "401", "413", "429", "503"}),
        ("/users/", "post", {"400", "413", "429", "503"}),
        ("/get_exam", "post", {"400", "401", "403", "404"}),
        ("/chat/{bot_id}", "post", {"400", "401", "404", "413", "429", "503"}),
        ("/conversations/new", "post", {"400", "401", "404", "409", "413", "429", "503"}),
    ],
)
def test_operations_declare_their_error_statuses_with_the_error_body(schema, path, method, statuses):
    responses = schema["paths"][path][method]["responses"]
    assert statuses <= set(responses), sorted(responses)
    for status in statuses:
        assert error_schema_of(schema, path, method, status)["required"] == ["detail", "code"]


def test_every_operation_but_the_root_declares_an_error_and_every_error_has_a_json_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            errors = {status for status in operation["responses"] if status >= "400"}
            assert errors or path == "/", (path, method)
            for status in errors:
                assert "schema" in operation["responses"][status]["content"]["application/json"], (path, status)
            if any(operation.get("security", [])):
                assert "401" in errors, (path, method)
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                assert "404" in errors, (path, method)


def test_v1_operations_declare_openai_error_objects(schema):
    for path in ("/v1/models", "/v1/models/{model}", "/v1/embeddings", "/v1/chat/completions"):
        for method in schema["paths"][path]:
            assert error_schema_of(schema, path, method, "401")["required"] == ["error"], path


def test_real_error_answers_match_the_documented_error_body(schema, api, anon):
    import jsonschema

    error = schema["components"]["schemas"]["Error"]
    wrong = {"username": "nobody@example.com", "password": "wrong"}
    logins = [anon.post("/token", wrong, format="json") for _ in range(11)]  # LOGIN_RATE is 10/min
    answers = [
        logins[0],
        logins[-1],
        api.get("/bots/00000000-0000-0000-0000-000000000000"),
        api.post("/bots/", {"name": ""}, format="json"),
        api.post("/bots/", {"name": "x", "owner": 5}, format="json"),
        api.post("/bots/", "[1]", content_type="application/json"),
        anon.get("/bots/"),
        api.get("/chats/", {"offset": -1}),
        api.post("/bots/", "<x/>", content_type="application/xml"),
    ]
    assert {response.status_code for response in answers} >= {400, 401, 404, 415, 429}
    for response in answers:
        jsonschema.validate(response.json(), error)
