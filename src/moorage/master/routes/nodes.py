"""/v1/nodes/{grid}: list, show, labels, drain and undrain, remove.

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.drain import drain_node, undrain_node
from moorage.master.drain_schemas import DrainOut, DryRunQuery, drain_out
from moorage.master.node_loss_schemas import ForceQuery, NodeLostOut, node_lost_out
from moorage.master.routing import api_router
from moorage.master.schemas import GridPath, LabelKeyQuery, LabelsIn, NodeList, NodeOut, NodePath, node_out
from moorage.master.state import State
from moorage.store.nodes import add_labels, get_node, list_nodes, remove_labels, remove_node

__all__ = ["router"]

router = api_router("/v1/nodes", "nodes")


@router.get("/{grid}")
async def index(grid: GridPath, state: State) -> NodeList:
    return await state.db.read(
        lambda session: NodeList(nodes=[node_out(n) for n in list_nodes(session, grid)])
    )


@router.get("/{grid}/{node}")
async def show(grid: GridPath, node: NodePath, state: State) -> NodeOut:
    return await state.db.read(lambda session: node_out(get_node(session, grid, node)))


@router.post("/{grid}/{node}/labels")
async def label_add(grid: GridPath, node: NodePath, body: LabelsIn, state: State) -> NodeOut:
    out = await state.db.run(lambda session: node_out(add_labels(session, grid, node, body.labels)))
    state.deployer.nodes_changed()  # an affinity may match now
    return out


@router.delete("/{grid}/{node}/labels")
async def label_remove(grid: GridPath, node: NodePath, state: State, key: LabelKeyQuery) -> NodeOut:
    """Remove the labels with these keys (``?key=zone&key=disk``); all or none."""
    out = await state.db.run(lambda session: node_out(remove_labels(session, grid, node, key)))
    state.deployer.nodes_changed()  # a "!=" affinity may match now
    return out


@router.post("/{grid}/{node}/drain")
async def drain(
    grid: GridPath, node: NodePath, state: State, actor: Actor, dry_run: DryRunQuery = False
) -> DrainOut:
    """Drain the node: it takes no instance until undrained, and every instance that can run
    elsewhere moves off (a deployment of their services; a volume move job, to the node the
    scheduler picks, for data only this node holds). Says what moves where (with the bytes each
    move copies, and its job) and what stays and why; ``dry_run`` changes nothing. Draining a
    drained node again tries again what stayed. Only the leading master drains (409 elsewhere)."""
    report = await drain_node(
        state.db, state.deployer, state.moves, grid, node, dry_run=dry_run, actor=actor.name
    )
    return drain_out(report)


@router.post("/{grid}/{node}/undrain")
async def undrain(grid: GridPath, node: NodePath, state: State, actor: Actor) -> NodeOut:
    """The node takes instances again (none moves back by itself)."""
    return node_out(await undrain_node(state.db, state.deployer, grid, node, actor.name))


@router.post("/{grid}/{node}/lost")
async def declare_lost(
    grid: GridPath, node: NodePath, state: State, actor: Actor, force: ForceQuery = False
) -> NodeLostOut:
    """Declare the node lost (``moorage node declare-lost``): refused (409) for an online node
    unless ``force``. Each instance-scope volume instance on it then follows its volume's
    ``on_node_lost``: wait, restore (its latest backup on another node: a restore job) or
    recreate (an empty one elsewhere). Declaring it again applies the policies again. On the
    leader only (another master answers 409)."""
    assert state.node_loss is not None
    declared = await state.node_loss.declare(grid, node, force=force, actor=actor.name)
    shown = await state.db.read(lambda session: node_out(get_node(session, grid, node)))
    return node_lost_out(shown, declared)


@router.delete("/{grid}/{node}")
async def remove(grid: GridPath, node: NodePath, state: State) -> dict[str, str]:
    def work(session: Session) -> None:
        found = get_node(session, grid, node)
        remove_node(session, grid, node, connected=state.hub.is_connected(found.id))

    await state.db.run(work)
    return {"removed": f"{grid}/{node}"}
