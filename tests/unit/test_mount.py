"""Mount specs (Kontena's rules): the pure parser shared by stack files and ``service create -v``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.model.mount import MOUNT_FLAGS, MountSpecError, clean_path, parse_mount
from moorage.model.quoting import shown
from moorage.model.stack import Mount, MountKind

VALID = [
    pytest.param("redis-data:/data", Mount(MountKind.NAMED, "/data", "redis-data"), id="named"),
    pytest.param("redis-data:/data:ro", Mount(MountKind.NAMED, "/data", "redis-data", "ro"), id="named-ro"),
    pytest.param(
        "db_1:/var/lib/db:rw,nocopy", Mount(MountKind.NAMED, "/var/lib/db", "db_1", "rw,nocopy"), id="nocopy"
    ),
    pytest.param(
        "data:/srv:Z,ro", Mount(MountKind.NAMED, "/srv", "data", "Z,ro"), id="flags-kept-as-written"
    ),
    pytest.param("/srv/redis:/data", Mount(MountKind.BIND, "/data", "/srv/redis"), id="bind"),
    pytest.param("/etc/tz:/etc/tz:ro,z", Mount(MountKind.BIND, "/etc/tz", "/etc/tz", "ro,z"), id="bind-ro-z"),
    pytest.param("/:/host:ro", Mount(MountKind.BIND, "/host", "/", "ro"), id="bind-host-root"),
    pytest.param("/data", Mount(MountKind.ANONYMOUS, "/data"), id="anonymous"),
    pytest.param("/data/", Mount(MountKind.ANONYMOUS, "/data/"), id="anonymous-trailing-slash-kept"),
    pytest.param("/my data", Mount(MountKind.ANONYMOUS, "/my data"), id="space-in-path"),
    pytest.param("0x:/data", Mount(MountKind.NAMED, "/data", "0x"), id="name-starting-with-digit"),
]


@pytest.mark.parametrize(("spec", "mount"), VALID)
def test_parses(spec: str, mount: Mount) -> None:
    assert parse_mount(spec) == mount
    assert mount.spec() == spec


INVALID = [
    pytest.param("", id="empty"),
    pytest.param("redis-data", id="bare-name"),
    pytest.param("data", id="relative-path"),
    pytest.param("/data:ro", id="anonymous-with-flags"),
    pytest.param("redis-data:data", id="relative-container-path"),
    pytest.param("./data:/data", id="relative-host-path"),
    pytest.param("~/data:/data", id="home-host-path"),
    pytest.param("a:/data", id="one-character-name"),
    pytest.param("my.vol:/data", id="dot-in-name"),
    pytest.param("-vol:/data", id="name-starting-with-dash"),
    pytest.param("redis-data:/", id="container-root"),
    pytest.param("redis-data://", id="container-root-doubled"),
    pytest.param("redis-data:/x/..", id="container-root-dotdot"),
    pytest.param("/", id="anonymous-root"),
    pytest.param("redis-data:/data:", id="empty-flags"),
    pytest.param("redis-data:/data:ro,", id="trailing-comma"),
    pytest.param("redis-data:/data:RO", id="flag-case"),
    pytest.param("redis-data:/data:ro,rw", id="ro-and-rw"),
    pytest.param("redis-data:/data:z,Z", id="z-and-Z"),
    pytest.param("redis-data:/data:ro,ro", id="repeated-flag"),
    pytest.param("redis-data:/data:shared", id="propagation-flag"),
    pytest.param("/srv:/data:nocopy", id="nocopy-on-bind"),
    pytest.param("redis-data:/data:ro:z", id="four-parts"),
    pytest.param("redis-data::/data", id="empty-part"),
    pytest.param(" redis-data:/data", id="leading-space"),
    pytest.param("redis-data\n:/data", id="newline-in-name"),
    pytest.param("redis-data:/data\n", id="trailing-newline"),
    pytest.param("redis-data:/da\x00ta", id="nul-in-path"),
    pytest.param("C:\\data:/data", id="windows-path"),
]


@pytest.mark.parametrize("spec", INVALID)
def test_refuses_with_kontenas_message(spec: str) -> None:
    with pytest.raises(MountSpecError) as caught:
        parse_mount(spec)
    assert str(caught.value) == f"volume definition not in right format: {shown(spec)}"  # Kontena's words
    assert caught.value.message == str(caught.value)
    assert caught.value.spec == spec
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        pytest.param("/data", "/data", id="plain"),
        pytest.param("/data/", "/data", id="trailing-slash"),
        pytest.param("//data", "/data", id="leading-double-slash"),
        pytest.param("/a/./b/../data", "/a/data", id="dots"),
        pytest.param("/", "/", id="root"),
    ],
)
def test_clean_path(path: str, clean: str) -> None:
    assert clean_path(path) == clean


# --- properties -------------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{1,20}", fullmatch=True)
_segment = st.text(
    alphabet=st.characters(blacklist_characters=":/", blacklist_categories=("Cc", "Cs")),
    min_size=1,
    max_size=8,
)
_host_paths = st.lists(_segment, max_size=4).map(lambda parts: "/" + "/".join(parts))
_container_paths = _host_paths.filter(lambda path: clean_path(path) != "/")

_FLAG_SETS = [
    combo
    for size in range(1, 4)
    for combo in itertools.permutations(MOUNT_FLAGS, size)
    if not {"ro", "rw"} <= set(combo) and not {"z", "Z"} <= set(combo)
]
_named_flags = st.none() | st.sampled_from(_FLAG_SETS).map(",".join)
_bind_flags = st.none() | st.sampled_from([c for c in _FLAG_SETS if "nocopy" not in c]).map(",".join)

_mounts = st.one_of(
    st.builds(lambda n, t, f: Mount(MountKind.NAMED, t, n, f), _names, _container_paths, _named_flags),
    st.builds(lambda s, t, f: Mount(MountKind.BIND, t, s, f), _host_paths, _container_paths, _bind_flags),
    st.builds(lambda t: Mount(MountKind.ANONYMOUS, t), _container_paths),
)


@settings(max_examples=500)
@given(_mounts)
def test_every_valid_mount_round_trips(mount: Mount) -> None:
    assert parse_mount(mount.spec()) == mount


_spec_like = st.text(alphabet=st.sampled_from(list("/:abZzrowncpy,.-_ \n\x00")), max_size=24)


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=40), _spec_like))
def test_any_text_parses_or_raises_the_pinned_error(text: str) -> None:
    try:
        mount = parse_mount(text)
    except MountSpecError as error:
        assert str(error) == f"volume definition not in right format: {shown(text)}"
    else:
        assert mount.spec() == text
        assert mount.target.startswith("/")
        assert (mount.source is None) == (mount.kind is MountKind.ANONYMOUS)
