"""OpenAPI descriptions of the authentications: the 000 body token and personal API keys."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BodyTokenScheme(OpenApiAuthenticationExtension):
    # OpenAPI cannot express a credential inside the body: this scheme says which JWT, and the
    # `token` field appears in each request body.
    target_class = "accounts.authentication.BodyTokenAuthentication"
    name = "jwtBodyToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The same access token, sent as the `token` field of the JSON body (seed 000).",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key (`byt_…`, made with `POST /api-keys`) as the bearer token.",
        }
