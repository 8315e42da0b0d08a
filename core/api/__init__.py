"""What the HTTP APIs share: the exception handler, the async views, the serializer base, pagination
and the OpenAPI schema (its streaming endpoints and every operation's error answers)."""
