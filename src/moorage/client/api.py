"""The one HTTP client of the master's API, used by the CLI, the testbed and the tests.

Plain requests (``get``, ``post``, ``delete``, ``request``) go through the standard library's
``http.client`` on one kept-alive connection: a CLI command that makes one or two of them does
not pay for importing httpx and building its client, which took longer than the request to a
local master. Streams (``stream_lines``), and every request when a ``transport`` is given (an
``httpx.MockTransport`` in the CLI's tests), go through httpx. Both ways check TLS alike: against
``ca`` when given, else the system's CAs, with the host name; a plain http:// master loads no CA
bundle at all.
"""

from __future__ import annotations

import json
import select
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from http.client import HTTPConnection as PlainConnection

    import httpx
    from websockets.sync.client import ClientConnection

from moorage.errors import MoorageError

__all__ = ["ApiError", "MasterClient"]


def _verify(ca: Path | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as err:
        raise MoorageError(
            f"Cannot use --ca {ca}: {err}; give the PEM file of the CA that signed the master's certificate"
        ) from err


def _untrusted(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(err)


class ApiError(MoorageError):
    """The master refused a request; ``status`` and ``payload`` are what it answered."""

    def __init__(self, status: int, payload: object) -> None:
        self.status_code = status
        self.error = payload
        if isinstance(payload, dict):
            message = "; ".join(f"{field}: {text}" for field, text in payload.items())
        else:
            message = str(payload)
        super().__init__(message)


def _decoded(status: int, body: bytes, reason: str) -> Any:
    """The body of an answer; ``ApiError`` for an error status."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = {"error": body.decode(errors="replace") or reason}
    if status >= 400:
        payload = decoded.get("error", decoded) if isinstance(decoded, dict) else decoded
        raise ApiError(status, payload)
    return decoded


def _answer(response: httpx.Response) -> Any:
    return _decoded(response.status_code, response.content, response.reason_phrase)


def _query_value(value: Any) -> str:
    """A query parameter as httpx writes it: booleans lowercase, None empty."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, _query_value(item)))
    return "?" + urlencode(pairs)


def _closed_by_peer(connection: PlainConnection) -> bool:
    """Whether a kept-alive connection's socket was closed by the master while idle (readable
    with nothing to read: its end of the stream): then it must not be used again."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class MasterClient:
    """``ca``: for an https:// master, trust only this CA bundle (PEM); without it, the system's CAs.
    ``transport``: where requests go instead of the network (an ``httpx.MockTransport`` in tests
    of the CLI); by default, the master at ``url``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        ca: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.ca = ca
        self.timeout = timeout
        self.transport = transport
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A plain http:// master shows no certificate: without --ca, no CA bundle is loaded for it
        # (loading the default one takes longer than a whole request to a local master).
        self._plain = ca is None and not self.url.lower().startswith("https://")
        if ca is not None:
            _verify(ca)  # a bad --ca is said at once, whatever the command does next
        self._http: httpx.Client | None = None
        # One keep-alive connection per thread: http.client's is not shared between threads (a
        # bench or a caller may send from several at once, as httpx allows).
        self._local = threading.local()
        self._opened: list[PlainConnection] = []
        self._opened_lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The httpx client (streams; every request with a ``transport``), made when first used."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(
                base_url=self.url,
                headers=self.headers,
                timeout=self.timeout,
                verify=False if self._plain else _verify(self.ca),
                transport=self.transport,
            )
        return self._http

    def __enter__(self) -> MasterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()

    def _unreachable(self, err: Exception) -> MoorageError:
        if _untrusted(err):
            return MoorageError(
                f"The master at {self.url} has a TLS certificate this client does not trust ({err}); "
                "pass --ca FILE (or MOORAGE_CA, or 'moorage login --ca FILE') with the CA that signed it"
            )
        return MoorageError(
            f"Cannot reach the master at {self.url}: {err}; is it running? "
            "Check --url / MOORAGE_URL or 'moorage login'"
        )

    def _plain_connection(self) -> PlainConnection:
        from http.client import HTTPConnection, HTTPSConnection

        connection: PlainConnection | None = getattr(self._local, "connection", None)
        if connection is not None and _closed_by_peer(connection):
            connection.close()  # the next request opens it again
        if connection is None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise MoorageError(f"Master URL {self.url} is not http://HOST:PORT or https://HOST:PORT")
            if parts.scheme == "https":
                verify = _verify(self.ca)
                context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
                connection = HTTPSConnection(
                    parts.hostname, parts.port, timeout=self.timeout, context=context
                )
            else:
                connection = HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
            self._local.connection = connection
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def request(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        if self.transport is not None:
            return self._httpx_request(method, path, json, params)
        from http.client import HTTPException

        prefix = urlsplit(self.url).path
        target = f"{prefix}{path}{_query(params)}"
        headers = {**self.headers, "Accept": "application/json"}
        body: bytes | None = None
        if json is not None:
            body = _json_bytes(json)
            headers["Content-Type"] = "application/json"
        connection = self._plain_connection()
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, HTTPException) as err:
            connection.close()
            raise self._unreachable(err) from err
        if response.will_close:
            connection.close()
        return _decoded(response.status, data, response.reason)

    def _httpx_request(self, method: str, path: str, json: Any, params: dict[str, Any] | None) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, json=json, params=params)
        except httpx.TransportError as err:
            raise self._unreachable(err) from err
        return _answer(response)

    def stream_lines(
        self, path: str, params: dict[str, Any] | None = None, *, read_timeout: float | None = None
    ) -> Iterator[Any]:
        """``GET`` an NDJSON stream: each line's value as it arrives (``read_timeout`` None: wait
        as long as the master keeps the stream open, as a followed log does)."""
        import httpx

        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        try:
            with self.http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    _answer(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.RemoteProtocolError as err:
            raise MoorageError(f"The master at {self.url} ended the stream early: {err}") from err
        except httpx.TransportError as err:
            raise self._unreachable(err) from err

    def websocket(self, path: str, params: list[tuple[str, str]]) -> ClientConnection:
        """Open one of the API's WebSockets (the admin token in its handshake); a refusal is an
        ``ApiError`` with the master's status and message, as for any other route."""
        from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
        from websockets.sync.client import connect

        base = self.url
        for http, ws in (("https://", "wss://"), ("http://", "ws://")):
            if base.startswith(http):
                base = ws + base.removeprefix(http)
        verify = _verify(self.ca)
        tls = (
            (verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context())
            if base.startswith("wss://")
            else None
        )
        headers = dict(self.headers)  # the token, nothing else
        url = f"{base}{path}?{urlencode(params)}"
        try:
            return connect(url, additional_headers=headers, ssl=tls, open_timeout=60, max_size=2**24)
        except InvalidStatus as err:
            body: Any
            try:
                body = json.loads(err.response.body or b"")
            except ValueError:
                body = {
                    "error": (err.response.body or b"").decode(errors="replace") or err.response.reason_phrase
                }
            payload = body.get("error", body) if isinstance(body, dict) else body
            raise ApiError(err.response.status_code, payload) from err
        except ssl.SSLCertVerificationError as err:
            raise MoorageError(
                f"The master at {self.url} has a TLS certificate this client does not trust ({err}); "
                "pass --ca FILE (or MOORAGE_CA, or 'moorage login --ca FILE') with the CA that signed it"
            ) from err
        except (OSError, InvalidURI, WebSocketException, TimeoutError) as err:
            raise self._unreachable(err) from err

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, params=params)

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, params=params)


def _json_bytes(value: Any) -> bytes:
    """A request body as httpx sends ``json=``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
