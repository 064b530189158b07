"""Fold eval-mode batch norms into a neighbouring affine map, where that is exact.

A batch norm is the per-channel affine map `x * scale + shift`, so
- after a Linear/Conv (whose output only it reads) it folds into that map (`bn_after`);
- before a Linear or an unpadded, ungrouped Conv2d (that only it feeds; through a
  flatten for a Linear) it folds into that map (`bn_before`): padding would apply the
  shift where the conv sees zeros, so a padded conv keeps it apart;
- anywhere else it stays its own affine node (kind `batchnorm`): still exact.
"""

from __future__ import annotations

from ._graph import Node

_FOLD_AFTER = ("linear", "conv1d", "conv2d", "avgpool2d")


def fold_batch_norms(nodes: list[Node], aliases: dict[str, str]) -> tuple[list[Node], dict[str, str]]:
    """The nodes with foldable batch norms removed, and the aliases of those removed."""
    nodes, aliases = list(nodes), dict(aliases)
    for bn in [n for n in nodes if n.kind == "batchnorm"]:
        if _fold_into_producer(nodes, bn, aliases) or _fold_into_consumer(nodes, bn):
            nodes.remove(bn)
    return nodes, aliases


def _users(nodes: list[Node], name: str) -> list[Node]:
    return [n for n in nodes if name in n.inputs]


def _rewire(nodes: list[Node], old: str, new: str) -> None:
    for n in nodes:
        n.inputs = tuple(new if i == old else i for i in n.inputs)


def _fold_into_producer(nodes: list[Node], bn: Node, aliases: dict[str, str]) -> bool:
    src = next(n for n in nodes if n.name == bn.inputs[0])
    if (src.op != "affine" or src.kind not in _FOLD_AFTER or src.layer.bn_after is not None
            or len(_users(nodes, src.name)) != 1):
        return False
    src.layer.bn_after = bn.layer.module
    _rewire(nodes, bn.name, src.name)
    aliases[bn.name] = src.name
    for k, v in aliases.items():
        if v == bn.name:
            aliases[k] = src.name
    return True


def _fold_into_consumer(nodes: list[Node], bn: Node) -> bool:
    users = _users(nodes, bn.name)
    if len(users) != 1:
        return False
    target = users[0]
    if target.kind == "reshape" and len(target.out_shape) == 1:
        more = _users(nodes, target.name)
        if len(more) != 1 or more[0].kind != "linear":
            return False
        target = more[0]
    if target.op != "affine" or target.layer.bn_before is not None or target.layer.bn_after is not None:
        return False
    m = target.layer.module
    if target.kind == "conv2d":
        if isinstance(m.padding, str) or any(m.padding) or m.groups != 1:
            return False
    elif target.kind != "linear":
        return False
    target.layer.bn_before = bn.layer.module
    _rewire(nodes, bn.name, bn.inputs[0])
    return True
