"""The web console in a real browser, as a person looks at it: a real master process, agents on
its real WebSocket (fake agents: no Docker needed), headless Chromium.

Nothing reloads the page in these tests: what changes on screen is the console's own script
polling the master.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.fake_agent import FakeNode
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

SOON = 5_000  # ms: "within seconds" (the page polls every 1.5 s)


def _rgb(page: Page, selector: str) -> tuple[int, int, int]:
    color = page.locator(selector).evaluate("element => getComputedStyle(element).backgroundColor")
    red, green, blue = (int(n) for n in re.findall(r"\d+", color)[:3])
    return red, green, blue


def _reddish(rgb: tuple[int, int, int]) -> bool:
    red, green, blue = rgb
    return red > green + 30 and red > blue + 30


def _shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


@pytest.fixture
def page(browser: Browser, master: MasterProcess) -> Iterator[Page]:
    """A browser tab signed in to the console with the master's admin token."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.goto(f"{master.url}/ui")
    expect(tab).to_have_url(re.compile(r"/ui/login\?next=/ui$"))
    tab.get_by_label("Admin token").fill(master.admin_token)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("heading", name="Grids")).to_be_visible()
    try:
        yield tab
    finally:
        context.close()


def _join_token(master: MasterProcess, grid: str) -> str:
    with master.client() as client:
        return str(client.post(f"/v1/grids/{grid}/token").json()["token"])


def test_sign_in_with_a_wrong_token_says_so_and_sets_nothing(browser: Browser, master: MasterProcess) -> None:
    context = browser.new_context()
    tab = context.new_page()
    try:
        tab.goto(f"{master.url}/ui/login")
        tab.get_by_label("Admin token").fill("not-a-token")
        tab.get_by_role("button", name="Sign in").click()
        expect(tab.get_by_role("alert")).to_contain_text("Token not accepted")
        assert context.cookies() == []
        tab.goto(f"{master.url}/ui")
        expect(tab).to_have_url(re.compile(r"/ui/login"))
    finally:
        context.close()


def test_the_cookie_is_httponly_strict_and_only_for_the_console(page: Page, master: MasterProcess) -> None:
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        "moorage_token",
        True,
        "Strict",
        "/ui",
    )
    assert page.evaluate("document.cookie") == ""  # no script on the page can read it
    api = page.request.get(f"{master.url}/v1/grids")  # the browser's own request: no cookie for the API
    assert api.status == 401


def test_a_node_going_offline_turns_its_row_red(
    page: Page, master: MasterProcess, grid: str, artifacts: Path
) -> None:
    token = _join_token(master, grid)
    node = FakeNode(master.url, token, "node-a")
    with FakeNode(master.url, token, "node-b") as other:
        node.start()
        wait_until(lambda: node.welcomes and other.welcomes, 10, "both fake nodes to join")
        page.goto(f"{master.url}/ui/grids/{grid}")
        row = page.locator('tr.node[data-node="node-a"]')
        expect(row.locator("td.state")).to_contain_text("online")
        assert not _reddish(_rgb(page, 'tr.node[data-node="node-a"]'))
        _shot(page, artifacts, "1-both-online")

        node.stopping.set()  # the agent goes away: its socket closes
        node.join(timeout=10)
        expect(row.locator("td.state")).to_contain_text("offline", timeout=SOON)
        expect(row).to_have_class(re.compile(r"\boffline\b"))
        assert _reddish(_rgb(page, 'tr.node[data-node="node-a"]'))
        assert not _reddish(_rgb(page, 'tr.node[data-node="node-b"]'))  # the other stays as it was
        expect(page.locator('tr.node[data-node="node-b"] td.state')).to_contain_text("online")
        offline = page.locator('#events tr.event[data-kind="node.offline"]')
        expect(offline).to_contain_text("node node-a offline: its connection closed", timeout=SOON)
        _shot(page, artifacts, "2-node-a-offline")


STACK = {
    "stack": "shop",
    "services": {
        "db": {"image": "postgres:local", "volumes": ["pgdata:/var/lib/postgresql/data"]},
    },
    "volumes": {"pgdata": {"external": {"name": "shop-data"}}},
}


def test_a_volume_instance_appears_under_its_node_after_a_deploy(
    page: Page, master: MasterProcess, grid: str, artifacts: Path
) -> None:
    token = _join_token(master, grid)
    with (
        FakeNode(master.url, token, "node-a", report_volumes=True) as node_a,
        FakeNode(master.url, token, "node-b", report_volumes=True) as node_b,
        master.client() as client,
    ):
        wait_until(lambda: node_a.welcomes and node_b.welcomes, 10, "both fake nodes to join")
        client.post(
            f"/v1/volumes/{grid}", json={"name": "shop-data", "scope": "instance", "driver": "local"}
        ).raise_for_status()
        page.goto(f"{master.url}/ui/grids/{grid}")
        volumes = page.locator("#volumes")
        expect(volumes.locator('[data-volume="shop-data"]')).to_be_visible()
        expect(volumes.locator("[data-copy]")).to_have_count(0)  # no data anywhere yet
        _shot(page, artifacts, "1-before-deploy")

        created = client.post(f"/v1/stacks/{grid}", json={"stack": STACK})
        assert created.status_code == 201, created.text
        deployment = created.json()["deployment"]
        wait_until(
            lambda: client.get(f"/v1/deployments/{deployment}").json()["state"] == "success",
            15,
            "the deployment to succeed",
        )
        (placed,) = client.get(f"/v1/volumes/{grid}/shop-data").json()["instances"]
        elsewhere = "node-b" if placed["node"] == "node-a" else "node-a"

        holder = volumes.locator(f'[data-map-node="{placed["node"]}"]')
        copy = holder.locator(f'[data-copy="{placed["name"]}"]')
        expect(copy).to_be_visible(timeout=SOON)
        expect(copy).to_contain_text("volume shop-data")
        expect(copy.locator(".mark")).to_have_text("in use", timeout=SOON)  # present, mounted by db-1 there
        expect(copy).to_contain_text("in use by shop/db-1")
        expect(volumes.locator(f'[data-map-node="{elsewhere}"] [data-copy]')).to_have_count(0)
        expect(page.locator('#stacks [data-service$="/shop/db"] tr.instance')).to_contain_text("running")
        copy.scroll_into_view_if_needed()
        _shot(page, artifacts, "2-volume-map-after-deploy")

        # the events feed, live too: newest first, what the deploy did and who asked for it
        events = page.locator("#events")
        made = events.locator('tr.event[data-kind="volume_instance.created"]')
        expect(made).to_contain_text(
            f"volume instance {placed['name']} of volume shop-data created", timeout=SOON
        )
        expect(made).to_contain_text(f"on node {placed['node']}")
        expect(events.locator('tr.event[data-kind="deployment.succeeded"]')).to_contain_text(
            "of stack shop succeeded", timeout=SOON
        )
        installed = events.locator('tr.event[data-kind="stack.installed"]')
        expect(installed).to_contain_text("stack shop installed")
        expect(installed.locator("td").last).to_have_text("admin")
        kinds = events.locator("tr.event").evaluate_all("rows => rows.map(r => r.dataset.kind)")
        assert kinds.index("deployment.succeeded") < kinds.index("stack.installed")  # newest first
        events.scroll_into_view_if_needed()
        _shot(page, artifacts, "3-events-after-deploy")


EVIL = "<b>bold</b><script>document.title='pwned'</script>"


def test_what_agents_send_is_shown_as_text_never_as_markup(
    page: Page, master: MasterProcess, grid: str, artifacts: Path
) -> None:
    token = _join_token(master, grid)
    with FakeNode(master.url, token, "node-a") as node, master.client() as client:
        wait_until(lambda: node.welcomes, 10, "the fake node to join")
        client.post(f"/v1/nodes/{grid}/node-a/labels", json={"labels": [f"note={EVIL}"]}).raise_for_status()
        page.goto(f"{master.url}/ui/grids/{grid}")
        labels = page.locator('tr.node[data-node="node-a"] .label')
        expect(labels.first).to_have_text(f"note={EVIL}")
        status = page.locator("#live-status")
        expect(status).to_contain_text("live ·", timeout=SOON)  # the sections came again through the script
        expect(labels.first).to_have_text(f"note={EVIL}")
        assert page.locator("#nodes b, #nodes script").count() == 0
        assert page.title() != "pwned"
        _shot(page, artifacts, "label-as-text")
