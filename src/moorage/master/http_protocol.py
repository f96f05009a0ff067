"""The master's HTTP/1.1 protocol: uvicorn's httptools one, with limits on request headers.

uvicorn times out an idle keep-alive connection (``timeout_keep_alive``) but neither a new
connection that sends nothing nor request headers that never end, and with httptools it takes
headers of any size. Here:

- request headers must be complete within ``HEADER_TIMEOUT`` seconds of the connection being
  made (or of the request's first byte, on a kept-alive connection), else 408 and the
  connection closes;
- request headers larger than ``MAX_HEADER_BYTES`` get 431 and the connection closes.

(The body has its own limits, in ``moorage.master.request_limits``.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

__all__ = ["HEADER_TIMEOUT", "MAX_HEADER_BYTES", "LimitedHttpProtocol"]

HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a request's line and headers."""

MAX_HEADER_BYTES = 64 * 1024
"""The most bytes of request line and headers the master reads for one request."""


class _HeadersTooLarge(Exception):
    """Stops the parser at the end of headers that are too large (it then reports a parser error)."""


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # bytes received while the headers are not complete
        self._parsed_bytes = 0  # the request line's and headers' bytes, as parsed
        self._awaiting_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting_headers:
            self._await_headers()

    def on_url(self, url: bytes) -> None:
        self._parsed_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._stop_header_timer()
        if self._parsed_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._parsed_bytes > MAX_HEADER_BYTES:
            self._refuse(431, f"Request headers are larger than {MAX_HEADER_BYTES} bytes")
        else:
            super().send_400_response(msg)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(431, f"Request headers are larger than {MAX_HEADER_BYTES} bytes")

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._parsed_bytes = 0
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self._refuse(408, f"Request headers did not arrive within {HEADER_TIMEOUT:.0f} s")

    def _refuse(self, status: int, message: str) -> None:
        self._stop_header_timer()
        body = message.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
