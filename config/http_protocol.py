"""uvicorn's httptools protocol, answering a request its parser refuses with the JSON 400 instead of plain text.

Such a request (raw bytes that are not ASCII in the request line, a malformed header, a broken chunked
body) never reaches Django. Start uvicorn with `--http config.http_protocol:HttpToolsProtocol`.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http import httptools_impl

BODY = json.dumps({"detail": "Bad request.", "code": "bad_request"}).encode()


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
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
