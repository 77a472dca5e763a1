"""The ``state_dict`` of the module :func:`archc.build` makes, without torch: key -> shape,
in the order torch lists them (torch-free, as codegen.py).

The keys follow the generated module: a node that owns a submodule (``torch_init``) is
reached by its dotted name (``layer1.0.conv1``), inside ``Block`` containers created with
its first layer, so torch's depth-first ``state_dict`` lists a container's layers together
even when another layer was created between two of them. The module tree is the code
generator's own (:func:`archc.backends.torch.codegen.build_tree`): one place names the
submodules. Each op's tensors come from its ``state`` (archc/ops/registry.py). A tied
weight (``tie:``) is one tensor reached through both layers, and torch's ``state_dict``
lists it under both keys: so does this one.

>>> import archc
>>> g = archc.loads("archc: 1\\ninput: [3, 8, 8]\\nlayers:\\n  - conv2d: {out: 4, kernel: 3, id: c}\\n"
...                 "  - batchnorm2d: {id: bn}\\n")
>>> state_dict_shapes(g)
{'c.weight': (4, 3, 3, 3), 'c.bias': (4,), 'bn.weight': (4,), 'bn.bias': (4,), 'bn.running_mean': (4,), \
'bn.running_var': (4,), 'bn.num_batches_tracked': ()}
"""

from __future__ import annotations

from archc.backends.torch.codegen import build_tree
from archc.ir.graph import Graph
from archc.ops.registry import get_op


def state_dict_shapes(graph: Graph) -> dict[str, tuple]:
    """``archc.build(graph).state_dict()``'s keys and shapes, in its order, from the
    analysed ``graph`` alone. Raises SpecErrors where the module could not be generated
    (a name that cannot be code), as ``archc.build`` does."""
    nested: dict = {}  # container -> {child name: container dict or node name}
    for name in build_tree(graph).leaves:  # creation order
        *scope, last = name.split(".")
        level = nested
        for part in scope:
            level = level.setdefault(part, {})
        level[last] = name
    nodes = {n.name: n for n in graph.nodes}
    out: dict[str, tuple] = {}
    stack = [iter(nested.values())]
    while stack:  # depth-first, children in registration order (nn.Module.state_dict)
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif isinstance(child, dict):
            stack.append(iter(child.values()))
        else:
            node = nodes[child]
            ins = [graph.shape_of(i) for i in node.inputs]
            for key, shape in get_op(node.op).state(node.attrs, ins, node.meta["shape"]).items():
                out[f"{child}.{key}"] = tuple(shape)
    return out
