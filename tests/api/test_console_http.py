"""The console over plain HTTP (no browser): bearer tokens for scripts, the sign-in form's rules,
the headers every page carries."""

from __future__ import annotations

import httpx

from tests.support.processes import MasterProcess


def test_scripts_read_the_live_sections_with_a_bearer_token(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        live = client.get(f"/ui/grids/{grid}/live")
        assert live.status_code == 200
        assert set(live.json()["sections"]) == {"nodes", "deployments", "stacks", "volumes", "events"}
        page = client.get(f"/ui/grids/{grid}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
    with master.client(token=None) as anonymous:
        refused = anonymous.get(f"/ui/grids/{grid}/live")
        assert refused.status_code == 401
        assert "bearer token" in refused.json()["error"]
        redirected = anonymous.get(f"/ui/grids/{grid}")
        assert redirected.status_code == 303
        assert redirected.headers["location"] == f"/ui/login?next=/ui/grids/{grid}"


def test_a_grid_that_does_not_exist_is_a_page_saying_so(master: MasterProcess) -> None:
    with master.client() as client:
        page = client.get("/ui/grids/no-such-grid")
        assert page.status_code == 404
        assert "Grid no-such-grid not found" in page.text


def test_sign_in_sets_the_cookie_and_goes_back_only_within_the_console(master: MasterProcess) -> None:
    with httpx.Client(base_url=master.url) as browser:
        signed = browser.post("/ui/login", data={"token": master.admin_token, "next": "/ui/grids/x"})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/grids/x"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        for elsewhere in ("//evil.example/ui", "https://evil.example/ui", "/v1/grids"):
            away = browser.post("/ui/login", data={"token": master.admin_token, "next": elsewhere})
            assert away.headers["location"] == "/ui", elsewhere
        assert browser.get("/ui").status_code == 200  # the cookie signs the console in
        assert browser.get("/v1/grids").status_code == 401  # and never the API


def test_sign_in_from_another_site_or_with_a_wrong_token_sets_nothing(master: MasterProcess) -> None:
    with httpx.Client(base_url=master.url) as browser:
        foreign = browser.post(
            "/ui/login", data={"token": master.admin_token}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert "another site" in foreign.json()["error"]
        wrong = browser.post("/ui/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "Token not accepted" in wrong.text
        empty = browser.post("/ui/login", data={"token": ""})
        assert empty.status_code == 401 and "Paste an admin token" in empty.text
        huge = browser.post("/ui/login", data={"token": "x" * 10_000})
        assert huge.status_code == 422
        assert all("set-cookie" not in r.headers for r in (foreign, wrong, empty, huge))
        assert not browser.cookies
        assert browser.get("/ui").status_code == 303


def test_signing_out_forgets_the_token(master: MasterProcess) -> None:
    with httpx.Client(base_url=master.url) as browser:
        browser.post("/ui/login", data={"token": master.admin_token})
        assert browser.get("/ui").status_code == 200
        out = browser.post("/ui/logout")
        assert out.status_code == 303
        assert browser.get("/ui").status_code == 303
