"""The one HTTP client of the master's API, used by the CLI, the testbed and the tests."""

from __future__ import annotations

from typing import Any

import httpx

from moorage.errors import MoorageError

__all__ = ["ApiError", "MasterClient"]


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


class MasterClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> MasterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(method, path, json=json, params=params)
        except httpx.TransportError as err:
            raise MoorageError(
                f"Cannot reach the master at {self.url}: {err}; is it running? "
                "Check --url / MOORAGE_URL or 'moorage login'"
            ) from err
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text or response.reason_phrase}
        if response.is_error:
            payload = body.get("error", body) if isinstance(body, dict) else body
            raise ApiError(response.status_code, payload)
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, params=params)
