"""Volumes a stack file declares (issue 15): the stack's own (``<stack>_<alias>``), and what a
stack expects of an external volume; each rule with its exact words, and the round trip through
the stored form for any declaration (hypothesis)."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from moorage.model.stack import StackSpec, StackVolume, VolumeDecl, stack_volume_name
from moorage.stackfile import StackFileError, load_stack, stack_from_dict, stack_to_dict
from moorage.stackfile.stored_service import load_service, service_document

GRID = "testgrid"


def load(text: str, *, name: str | None = None, env: dict[str, str] | None = None) -> StackSpec:
    return load_stack(textwrap.dedent(text), env=env or {}, grid=GRID, name=name)


def issues_of(text: str, *, name: str | None = None) -> list[tuple[str, str]]:
    with pytest.raises(StackFileError) as caught:
        load(text, name=name)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def stack(volumes: str, *, mounts: str = "[data:/data]") -> str:
    return (
        f"stack: redis\nservices:\n  redis:\n    image: redis:7-alpine\n    volumes: {mounts}\nvolumes:\n"
        + (textwrap.indent(textwrap.dedent(volumes), "  "))
    )


def test_an_entry_without_external_is_a_volume_of_the_stack_named_after_it() -> None:
    spec = load(
        stack(
            """
            data:
              scope: stack
              driver: dirvol
              driver_opts: {size: 10, sync: true}
              labels: {team: db}
              topology: node
            """
        )
    )
    assert spec.volumes == (
        VolumeDecl(
            "data",
            owned=StackVolume(
                "stack", "dirvol", (("size", "10"), ("sync", "true")), (("team", "db"),), "node"
            ),
        ),
    )
    assert spec.volumes[0].grid_volume("redis") == "redis_data"


def test_two_names_for_one_file_give_two_volumes() -> None:
    text = stack("data: {scope: instance, driver: local}")
    a, b = load(text, name="a"), load(text, name="b")
    stored_a = load_service(service_document(a, a.services[0]))
    stored_b = load_service(service_document(b, b.services[0]))
    assert stored_a.grid_volumes == ["a_data"] and stored_b.grid_volumes == ["b_data"]
    assert stack_volume_name("a", "data") == "a_data"


def test_compose_style_entries_get_instance_scope_and_the_local_driver() -> None:
    spec = load(stack("data:\nother: {external: false}", mounts="[data:/data, other:/other]"))
    assert [decl.owned for decl in spec.volumes] == [StackVolume("instance", "local")] * 2
    # the defaults are written out where the stack is stored
    assert stack_to_dict(spec)["volumes"] == {
        "data": {"scope": "instance", "driver": "local"},
        "other": {"scope": "instance", "driver": "local"},
    }


def test_stack_and_environment_variables_interpolate_in_a_declaration() -> None:
    text = stack(
        "data: {driver: local, driver_opts: {device: '/srv/${STACK}/${DISK}'}, labels: {of: $STACK}}"
    )
    spec = load(text, name="shop", env={"DISK": "ssd"})
    owned = spec.volumes[0].owned
    assert owned is not None
    assert owned.driver_opts == (("device", "/srv/shop/ssd"),)
    assert owned.labels == (("of", "shop"),)


def test_an_external_volume_may_state_the_scope_and_driver_expected() -> None:
    spec = load(stack("data: {external: {name: redis-data, scope: instance, driver: local}}"))
    assert spec.volumes == (
        VolumeDecl("data", external_name="redis-data", expected_scope="instance", expected_driver="local"),
    )
    assert stack_to_dict(spec)["volumes"] == {
        "data": {"external": {"name": "redis-data", "scope": "instance", "driver": "local"}}
    }
    assert stack_from_dict(stack_to_dict(spec)) == spec
    # Kontena's forms read and write as before
    plain = load(stack("data: {external: true}"))
    assert stack_to_dict(plain)["volumes"] == {"data": {"external": True}}
    named = load(stack("data: {external: {name: other}}"))
    assert stack_to_dict(named)["volumes"] == {"data": {"external": {"name": "other"}}}


UNKNOWN_KEY = (
    "unknown key '{0}'{1}; the keys allowed here are: backup, driver, driver_opts, external, labels, "
    "on_node_lost, scope, topology"
)

RULES = [
    pytest.param(
        "data: {scope: node}",
        "volumes.data.scope",
        "Unknown scope 'node', must be one of grid, stack, instance",
        id="scope-unknown",
    ),
    pytest.param(
        "data: {driver: 'rexray:1.0'}",
        "volumes.data.driver",
        "Driver 'rexray:1.0' must not have a tag: use the driver's name without ':1.0'",
        id="driver-with-tag",
    ),
    pytest.param(
        "data: {driver: local, topology: zone}",
        "volumes.data.topology",
        "Topology 'zone' needs a driver whose volumes other nodes can use (capability scope global), but "
        "'local' is Docker's built-in driver: only the node that made a volume instance sees its data; "
        "use topology node, or a driver that is global",
        id="topology-local-driver",
    ),
    pytest.param(
        "data: {topology: everywhere}",
        "volumes.data.topology",
        "Unknown topology 'everywhere', must be one of node, zone, region, grid",
        id="topology-unknown",
    ),
    pytest.param(
        "data: {driver_opts: [size=1]}",
        "volumes.data.driver_opts",
        "must be a mapping of names to strings, e.g. type: nfs, not a list",
        id="driver-opts-list",
    ),
    pytest.param(
        "data: {labels: {team: }}",
        "volumes.data.labels.team",
        'has no value; write team: "" for an empty value',
        id="label-without-value",
    ),
    pytest.param(
        "data: {scoep: stack}",
        "volumes.data.scoep",
        UNKNOWN_KEY.format("scoep", " (did you mean 'scope'?)"),
        id="misspelled-key",
    ),
    pytest.param(
        "data: {external: true, labels: {a: b}}",
        "volumes.data.labels",
        "labels: defines a volume of this stack, but this one is external (made with 'moorage volume "
        "create'); remove external: to make it the stack's own, or remove this key",
        id="labels-beside-external",
    ),
    pytest.param(
        "data: {external: {name: redis-data, scope: all}}",
        "volumes.data.external.scope",
        "Unknown scope 'all', must be one of grid, stack, instance",
        id="expected-scope-unknown",
    ),
    pytest.param(
        "data: {external: {name: redis-data, topology: node}}",
        "volumes.data.external.topology",
        "unknown key 'topology'; the keys allowed here are: driver, name, scope",
        id="expected-topology-not-a-key",
    ),
    pytest.param(
        "data: {on_node_lost: forget}",
        "volumes.data.on_node_lost",
        "Unknown on_node_lost 'forget', must be one of wait, restore, recreate",
        id="on-node-lost-unknown",
    ),
    pytest.param(
        "data: {scope: grid, on_node_lost: recreate}",
        "volumes.data.on_node_lost",
        "on_node_lost recreate applies to instance-scope volumes only: a grid-scope volume has a volume "
        "instance on every node that uses it, so an instance placed elsewhere uses that node's; use wait "
        "(the default)",
        id="on-node-lost-not-instance-scope",
    ),
    pytest.param(
        "data: {backup: {schedule: 'every night'}}",
        "volumes.data.backup.schedule",
        "'every night' is not a cron expression: give five fields (minute hour day month weekday), "
        "e.g. '0 3 * * *' for every day at 03:00 UTC",
        id="backup-schedule-not-cron",
    ),
    pytest.param(
        "data: {backup: {schedule: '0 3 * * *', keep: {daily: 7, fortnightly: 2}}}",
        "volumes.data.backup.keep",
        "'fortnightly=2' is not KEY=N with KEY one of last, hourly, daily, weekly, monthly, yearly, "
        "e.g. daily=7,weekly=4",
        id="backup-keep-unknown-key",
    ),
    pytest.param(
        "data: {backup: {keep: daily=7}}",
        "volumes.data.backup.keep",
        "is applied after scheduled backups: give backup: {schedule: CRON} too",
        id="backup-keep-without-schedule",
    ),
    pytest.param(
        "data: {backup: {schedule: '0 3 * * *', every: 1}}",
        "volumes.data.backup.every",
        "unknown key 'every'; the keys allowed here are: keep, schedule",
        id="backup-unknown-key",
    ),
    pytest.param(
        "data: {backup: daily}",
        "volumes.data.backup",
        "must be a mapping such as {schedule: '0 3 * * *', keep: daily=7}, not 'daily'",
        id="backup-not-a-mapping",
    ),
    pytest.param(
        "data: {external: true, backup: {schedule: '0 3 * * *'}}",
        "volumes.data.backup",
        "an external volume's backups are set where it was made: 'moorage volume update data "
        "--backup-schedule CRON'; remove backup: here, or remove external: to make it a volume of this stack",
        id="backup-beside-external",
    ),
    pytest.param(
        "data: [scope=stack]",
        "volumes.data",
        "must be a mapping such as external: true or scope: instance, not a list",
        id="entry-list",
    ),
]


@pytest.mark.parametrize(("volumes", "path", "message"), RULES)
def test_stack_volume_rule(volumes: str, path: str, message: str) -> None:
    assert issues_of(stack(volumes)) == [(path, message)]


@pytest.mark.parametrize("keep", ["'daily=7,weekly=4'", "{daily: 7, weekly: 4}", "' weekly=4 , daily=7'"])
def test_a_stack_volume_is_backed_up_on_the_schedule_its_file_gives(keep: str) -> None:
    """``backup:`` takes ``volume create --backup-schedule/--backup-keep``'s values; the retention
    as text or as a mapping, stored in one form."""
    spec = load(stack(f"data: {{scope: instance, backup: {{schedule: '0 3 * * *', keep: {keep}}}}}"))
    (decl,) = spec.volumes
    assert decl.owned is not None
    assert (decl.owned.backup_schedule, decl.owned.backup_keep) == ("0 3 * * *", "daily=7,weekly=4")
    assert stack_to_dict(spec)["volumes"]["data"]["backup"] == {
        "schedule": "0 3 * * *",
        "keep": "daily=7,weekly=4",
    }
    assert stack_from_dict(stack_to_dict(spec)) == spec
    plain = load(stack("data: {backup: {schedule: '*/5 * * * *'}}")).volumes[0].owned
    assert plain is not None and (plain.backup_schedule, plain.backup_keep) == ("*/5 * * * *", None)


def test_the_volume_name_of_a_long_stack_and_alias_must_fit() -> None:
    alias = "d" * 40
    text = stack(f"{alias}: {{scope: instance}}", mounts=f"[{alias}:/data]")
    name = "s" * 30
    assert issues_of(text, name=name) == [
        (
            f"volumes.{alias}",
            f"Volume name '{name}_{alias}' is 71 characters long; use at most 64: the stack's volume is "
            "named <stack>_<alias>; use a shorter alias",
        )
    ]
    assert load(text, name="s" * 23).volumes[0].grid_volume("s" * 23) == f"{'s' * 23}_{alias}"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12)
_key = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,10}", fullmatch=True)


@given(
    scope=st.sampled_from(["instance", "stack", "grid"]),
    driver=st.sampled_from(["local", "dirvol", "rexray/ebs"]),
    driver_opts=st.dictionaries(_key, _text, max_size=4),
    labels=st.dictionaries(_key, _text, max_size=4),
    topology=st.sampled_from([None, "node"]),
    backup=st.sampled_from([(None, None), ("0 3 * * *", None), ("*/15 * * * 1-5", "last=3,daily=7")]),
    on_node_lost=st.sampled_from([None, "wait", "restore", "recreate"]),
)
def test_any_stack_volume_survives_the_stored_form(
    scope: str,
    driver: str,
    driver_opts: dict[str, str],
    labels: dict[str, str],
    topology: str | None,
    backup: tuple[str | None, str | None],
    on_node_lost: str | None,
) -> None:
    assume(scope == "instance" or on_node_lost in (None, "wait"))  # (restore/recreate: instance scope only)
    owned = StackVolume(
        scope, driver, tuple(driver_opts.items()), tuple(labels.items()), topology, *backup, on_node_lost
    )
    spec = StackSpec(
        name="app",
        services=load(stack("data: {}")).services,
        volumes=(VolumeDecl("data", owned=owned),),
    )
    again = stack_from_dict(stack_to_dict(spec))
    assert again == spec
    stored = load_service(service_document(again, again.services[0]))
    assert stored.volumes == {"data": "app_data"}
