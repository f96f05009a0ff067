"""The one HTTP client of the master's API, used by the CLI, the testbed and the tests."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

if TYPE_CHECKING:
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


def _untrusted(err: httpx.ConnectError) -> bool:
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


def _answer(response: httpx.Response) -> Any:
    """The body of a response; ``ApiError`` for an error status."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text or response.reason_phrase}
    if response.is_error:
        payload = body.get("error", body) if isinstance(body, dict) else body
        raise ApiError(response.status_code, payload)
    return body


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
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A plain http:// master shows no certificate: without --ca, no CA bundle is loaded for it
        # (loading the default one takes longer than a whole request to a local master).
        plain = ca is None and not self.url.lower().startswith("https://")
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            verify=False if plain else _verify(ca),
            transport=transport,
        )

    def __enter__(self) -> MasterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _unreachable(self, err: Exception) -> MoorageError:
        if isinstance(err, httpx.ConnectError) and _untrusted(err):
            return MoorageError(
                f"The master at {self.url} has a TLS certificate this client does not trust ({err}); "
                "pass --ca FILE (or MOORAGE_CA, or 'moorage login --ca FILE') with the CA that signed it"
            )
        return MoorageError(
            f"Cannot reach the master at {self.url}: {err}; is it running? "
            "Check --url / MOORAGE_URL or 'moorage login'"
        )

    def request(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
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
        timeout = httpx.Timeout(self.http.timeout.connect, read=read_timeout)
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
        headers = {k: v for k, v in self.http.headers.items() if k.lower() == "authorization"}
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

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, params=params)
