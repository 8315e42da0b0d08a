"""uvicorn's httptools protocol, answering a request its parser refuses with the JSON 400 instead of plain text,
and draining without a race against a proxy's pooled connections.

Such a request (raw bytes that are not ASCII in the request line, a malformed header, a broken chunked
body) never reaches Django. Start uvicorn with `--http config.http_protocol:HttpToolsProtocol`.
"""

from __future__ import annotations

import json
import time

from uvicorn.protocols.http import httptools_impl

BODY = json.dumps({"detail": "Bad request.", "code": "bad_request"}).encode()

# nginx closes an upstream connection idle this long (deploy/nginx/bytchat.conf.template: keepalive_timeout 4s);
# a draining process closes its own idle ones only after that, when nginx can no longer pick them.
IDLE_CLOSE_AFTER_DRAIN_SECONDS = 5.0


class Drain:
    """When this process began to stop (uvicorn's graceful shutdown); config/lifespan.py gives its runs the rest."""

    since: float | None = None

    @classmethod
    def begin(cls) -> None:
        if cls.since is None:
            cls.since = time.monotonic()


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def shutdown(self) -> None:
        """uvicorn closes an idle keep-alive connection at once; nginx may be writing a request on it that
        very moment, and a POST already sent cannot be retried elsewhere (a 502). Instead the connection
        answers what comes with `Connection: close`, and an idle one is closed after nginx's own time-out."""
        Drain.begin()
        if self.cycle is None or self.cycle.response_complete:
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                IDLE_CLOSE_AFTER_DRAIN_SECONDS, self.timeout_keep_alive_handler
            )
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if Drain.since is not None and self.cycle is not None:
            self.cycle.keep_alive = False  # served, then closed: the next request goes to another process

    def handle_websocket_upgrade(self) -> None:
        if Drain.since is not None:
            # A socket opened now would be closed at once (1012); closed unanswered, the GET is retried by
            # nginx on another process (proxy_next_upstream error).
            self.transport.close()
            return
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        # `msg` is uvicorn's own ("Invalid HTTP request received."); uvicorn has logged it.
        content = [httptools_impl.STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(BODY)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
