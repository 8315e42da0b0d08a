"""The project's wiring: settings, URLs, the ASGI application and its middleware, WebSocket routing,
the server's command line, the admin site and the project-level error views.

Code the apps share lives in `core/` (errors, shared state) and `core/api/` (DRF and async-view helpers).
"""
