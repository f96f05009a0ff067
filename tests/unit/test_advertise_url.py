"""``moorage master --advertise-url``: where the other masters of the store reach this one (their
links to its agents, the logs and exec they pass on). A master listening on 0.0.0.0 is not
reachable at that address from another machine; the URL it records is the advertised one."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.errors import InvalidInput
from moorage.master.server import MasterConfig, parse_advertise_url


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://10.0.0.5:8470", "http://10.0.0.5:8470"),
        ("https://master-1.example.org", "https://master-1.example.org"),
        (" http://[fd00::5]:8470/ ", "http://[fd00::5]:8470"),
    ],
)
def test_an_advertised_url_is_what_the_store_records(given: str, kept: str, tmp_path: Path) -> None:
    assert parse_advertise_url(given) == kept
    config = MasterConfig(host="0.0.0.0", port=8470, data_dir=tmp_path, advertise_url=kept)
    assert config.identity.url == kept
    assert config.identity.name == "0.0.0.0:8470", "the name stays the listen address"


def test_without_one_the_listen_address_is_recorded(tmp_path: Path) -> None:
    assert (
        MasterConfig(host="127.0.0.1", port=8471, data_dir=tmp_path).identity.url == "http://127.0.0.1:8471"
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("10.0.0.5:8470", "is not http://HOST[:PORT]"),
        ("ftp://10.0.0.5", "is not http://HOST[:PORT]"),
        ("http://", "is not http://HOST[:PORT]"),
        ("http://10.0.0.5:8470/api", "no path, query or user"),
        ("http://me@10.0.0.5:8470", "no path, query or user"),
        ("http://10.0.0.5:99999", "port that is not a number"),
    ],
)
def test_a_bad_one_is_refused_saying_where_and_how(given: str, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_advertise_url(given)
    payload = refused.value.payload()
    assert isinstance(payload, dict) and list(payload) == ["--advertise-url"], payload
    assert said in payload["--advertise-url"] and "e.g. http://10.0.0.5:8470" in payload["--advertise-url"]
