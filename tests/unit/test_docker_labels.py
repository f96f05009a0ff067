"""The Docker label keys are spelled in one module: the master writes them and the agent reads
them, and "an agent only touches what carries our labels" holds only while both agree."""

from __future__ import annotations

from pathlib import Path

import moorage
from moorage.master.container_specs import ContainerTemplate
from moorage.master.desired import volume_spec
from moorage.model import docker_labels
from moorage.model.stack import ServiceSpec
from moorage.store.instances import NodeVolumeInstance

SOURCE = Path(moorage.__file__).parent


def test_label_keys_are_literals_in_one_module_only() -> None:
    spelled = sorted(
        str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py") if "io.moorage." in path.read_text()
    )
    assert spelled == ["model/docker_labels.py"]


def test_containers_and_volumes_carry_the_keys_the_agent_reads() -> None:
    planned = ContainerTemplate("g", "null", ServiceSpec(name="web", image="x:local")).document(1, {})
    labels = planned.document["labels"]
    assert labels[docker_labels.GRID] == "g"
    assert labels[docker_labels.CONFIG_HASH] == planned.config_hash
    instance = NodeVolumeInstance(
        id="vi1", name="data", driver="local", driver_opts={}, state="pending", volume="data"
    )
    spec = volume_spec(instance, "g")
    assert spec.labels == {
        docker_labels.GRID: "g",
        docker_labels.VOLUME: "g/data",
        docker_labels.VOLUME_INSTANCE: "vi1",
    }
