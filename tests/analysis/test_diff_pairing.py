"""How archc/analysis/diff.py pairs the nodes of two networks: a changed layer stays
*changed* however far away an inserted look-alike sits, shifted ids are *renamed*, moved
layers pair by id, and random specs with inserted layers report exactly those as added."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.analysis.diff import diff
from strategies import specs

HEAD = "archc: 1\nname: t\ninput: [4, 8, 8]\nlayers:\n"


def outcome(a_text: str, b_text: str) -> dict:
    """The pairing as names: {status: [(A id, B id, fields)]}, in graph order."""
    d = diff(archc.loads(a_text), archc.loads(b_text))
    return {"changed": [(c.a.name, c.b.name, c.fields) for c in d.changed],
            "renamed": [(x.name, y.name) for x, y in d.renamed],
            "added": [m.name for m in d.added], "removed": [n.name for n in d.removed]}


def chain(steps: int) -> str:
    """A residual chain of conv, batch norm, relu, add steps with every layer written
    out (the shape of bench/bench_validate.py's flat spec, written here independently)."""
    return HEAD + "".join(step(i, "input" if i == 0 else f"add{i - 1}") for i in range(steps))


def step(i: int, skip: str, prefix: str = "") -> str:
    """One residual step of chain(), its ids prefixed; it reads the layer before it."""
    return "".join(f"  - {line}\n" for line in (
        f"conv2d: {{out: 4, kernel: 3, padding: 1, id: {prefix}conv{i}}}", f"batchnorm2d: {{id: {prefix}bn{i}}}",
        f"relu: {{id: {prefix}relu{i}}}", f"add: {{id: {prefix}add{i}, from: [{prefix}relu{i}, {skip}]}}"))


def test_first_conv_changed_and_a_conv_inserted_in_the_middle():
    """bench/bench_import.py's pair at 48 nodes: the inserted conv looks like conv0 did, 24
    positions away; before the anchors, conv0 was "renamed conv0 -> extra_conv" and the
    5x5 conv0 "added"."""
    a = chain(12)
    middle = "  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv6}\n"
    b = a.replace(middle, "  - conv2d: {out: 4, kernel: 3, padding: 1, id: extra_conv}\n"
                          "  - batchnorm2d: {id: extra_bn}\n" + middle)
    b = b.replace("{out: 4, kernel: 3, padding: 1, id: conv0}", "{out: 4, kernel: 5, padding: 2, id: conv0}")
    assert outcome(a, b) == {"changed": [("conv0", "conv0", ["attrs", "params", "macs"])], "renamed": [],
                             "added": ["extra_conv", "extra_bn"], "removed": []}


def test_changed_layer_next_to_an_inserted_copy_of_its_old_self():
    a = HEAD + ("  - conv2d: {out: 4, kernel: 1, id: stem}\n  - conv2d: {out: 4, kernel: 3, padding: 1, id: body}\n"
                "  - relu: {id: act}\n")
    b = a.replace("  - conv2d: {out: 4, kernel: 3, padding: 1, id: body}\n",
                  "  - conv2d: {out: 4, kernel: 3, padding: 1, id: extra}\n"
                  "  - conv2d: {out: 4, kernel: 5, padding: 2, id: body}\n")
    assert outcome(a, b) == {"changed": [("body", "body", ["attrs", "params", "macs"])], "renamed": [],
                             "added": ["extra"], "removed": []}
    # the same with the insertion after the changed layer
    b = a.replace("  - relu: {id: act}\n", "  - conv2d: {out: 4, kernel: 3, padding: 1, id: extra}\n"
                                           "  - relu: {id: act}\n").replace("kernel: 3, padding: 1, id: body",
                                                                            "kernel: 5, padding: 2, id: body")
    assert outcome(a, b) == {"changed": [("body", "body", ["attrs", "params", "macs"])], "renamed": [],
                             "added": ["extra"], "removed": []}


def test_ids_shifted_by_inserted_batch_norms_are_renamed():
    """torchvision's vgg against vgg_bn, two stages at 4 and 8 channels: a batch norm after
    each conv shifts every later ``features.N`` (features.2 of one is features.3 of the
    other), and features.7 is a conv 8 -> 8 in one, a conv 4 -> 8 in the other: the same op,
    attributes and output shape, another layer (its parameters tell)."""
    conv4, conv8 = "conv2d: {out: 4, kernel: 3, padding: 1, id: ", "conv2d: {out: 8, kernel: 3, padding: 1, id: "
    relu, bn, pool = "relu: {id: ", "batchnorm2d: {id: ", "maxpool2d: {kernel: 2, id: "
    a = [conv4, relu, conv4, relu, pool, conv8, relu, conv8, relu]
    b = [conv4, bn, relu, conv4, bn, relu, pool, conv8, bn, relu, conv8, bn, relu]
    a, b = (HEAD + "".join(f"  - {op}features.{k}}}\n" for k, op in enumerate(ops)) for ops in (a, b))
    shifted = [(1, 2), (2, 3), (3, 5), (4, 6), (5, 7), (6, 9), (7, 10), (8, 12)]  # A's N -> B's N
    assert outcome(a, b) == {"changed": [], "renamed": [(f"features.{x}", f"features.{y}") for x, y in shifted],
                             "added": ["features.1", "features.4", "features.8", "features.11"], "removed": []}


def test_reordered_layers_pair_by_id():
    """Two branches written in the other order are the same network; a layer moved to the
    other end of a chain pairs with itself and leaves the rest's alignment alone: it and the
    layer after its new place are changed in their inputs only, and the output moves."""
    a = HEAD + ("  - conv2d: {out: 4, kernel: 1, id: left, from: input}\n"
                "  - conv2d: {out: 4, kernel: 3, padding: 1, id: right, from: input}\n"
                "  - concat: {id: cat, from: [left, right]}\n")
    b = HEAD + ("  - conv2d: {out: 4, kernel: 3, padding: 1, id: right, from: input}\n"
                "  - conv2d: {out: 4, kernel: 1, id: left, from: input}\n"
                "  - concat: {id: cat, from: [left, right]}\n")
    assert diff(archc.loads(a), archc.loads(b)).identical
    a = chain(3) + "  - dropout: {p: 0.1, id: drop}\n"
    b = chain(3).replace("  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv1}\n",
                         "  - dropout: {p: 0.1, id: drop, from: add0}\n"
                         "  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv1, from: drop}\n")
    d = diff(archc.loads(a), archc.loads(b))
    assert not (d.renamed or d.added or d.removed)
    # A: add0 -> conv1, add2 -> drop (the output); B: add0 -> drop -> conv1, add2 the output
    assert [(c.a.name, c.b.name, c.fields, c.a.inputs, c.b.inputs) for c in d.changed] == [
        ("conv1", "conv1", ["inputs"], ["add0"], ["drop"]), ("drop", "drop", ["inputs"], ["add2"], ["add0"])]
    assert d.outputs == (["drop"], ["add2"])


def wired(a_from: str, b_from: str, outputs: str = "") -> dict:
    """Three linears, an add reading two of them (``a_from`` in A, ``b_from`` in B)."""
    text = HEAD.replace("[4, 8, 8]", "[4]") + ("  - linear: {out: 4, id: a}\n  - linear: {out: 4, id: b}\n"
                                               "  - linear: {out: 4, id: c}\n  - add: {id: s, from: FROM}\n")
    d = diff(archc.loads(text.replace("FROM", a_from)), archc.loads(text.replace("FROM", b_from) + outputs))
    return {"changed": [(c.a.name, c.b.name, c.fields) for c in d.changed], "outputs": d.outputs,
            "identical": d.identical, "same": len(d.same)}


def test_wiring_alone_is_a_change():
    """Before, the pairing compared what each node is, not what it reads: a residual add
    moved from one source to another, with every layer and count the same, read
    "no difference"."""
    assert wired("[a, c]", "[b, c]") == {"changed": [("s", "s", ["inputs"])], "outputs": None,
                                         "identical": False, "same": 3}
    # add and multiply commute: the same sources in another order are the same network
    assert wired("[a, c]", "[c, a]")["identical"]
    # a concat's order is its output's channel order
    conc = HEAD.replace("[4, 8, 8]", "[4]") + ("  - linear: {out: 4, id: a}\n  - linear: {out: 4, id: b}\n"
                                               "  - concat: {id: j, from: FROM}\n")
    d = diff(archc.loads(conc.replace("FROM", "[a, b]")), archc.loads(conc.replace("FROM", "[b, a]")))
    assert [(c.a.name, c.fields) for c in d.changed] == [("j", ["inputs"])]


def test_outputs_alone_are_a_change():
    a = HEAD.replace("[4, 8, 8]", "[4]") + "  - linear: {out: 4, id: a}\n  - linear: {out: 4, id: b}\n"
    d = diff(archc.loads(a + "outputs: [a, b]\n"), archc.loads(a + "outputs: [b]\n"))
    assert (d.outputs, d.identical, d.changed) == ((["a", "b"], ["b"]), False, [])
    d = diff(archc.loads(a + "outputs: [a, b]\n"), archc.loads(a + "outputs: [b, a]\n"))
    assert d.outputs == (["a", "b"], ["b", "a"])  # the order of outputs is what the forward returns
    # the default output (the last node) against the same named
    assert diff(archc.loads(a), archc.loads(a + "outputs: [b]\n")).identical
    # a head layer removed: A's output stands for the layer it read, the same as B's output
    d = diff(archc.loads(a + "  - softmax: {id: p}\n"), archc.loads(a))
    assert ([n.name for n in d.removed], d.outputs, d.changed) == (["p"], None, [])


def test_inserted_nodes_are_looked_through():
    """A batch norm inserted before a ReLU does not make the ReLU changed: the added node
    stands for the conv it reads. The same for whole inserted residual steps (their adds read
    two added nodes, both leading back to the step before) and for removed nodes; a new
    node that merges two sources, though, changes what the next layer reads."""
    a = chain(4)
    b = a.replace("  - relu: {id: relu2}\n", "  - batchnorm2d: {id: extra}\n  - relu: {id: relu2}\n")
    assert outcome(a, b) == {"changed": [], "renamed": [], "added": ["extra"], "removed": []}
    assert outcome(b, a) == {"changed": [], "renamed": [], "added": [], "removed": ["extra"]}
    # two residual steps more before step 2, which reads them (its conv the layer before it)
    conv2 = "  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv2}\n"
    b = a.replace(conv2, step(0, "add1", "x") + step(1, "xadd0", "x") + conv2)
    b = b.replace("from: [relu2, add1]", "from: [relu2, xadd1]")
    got = outcome(a, b)
    assert (got["changed"], got["renamed"], got["removed"], len(got["added"])) == ([], [], [], 8)
    # a new add of two old sources before conv2: conv2 reads another value now
    b = a.replace("  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv2}\n",
                  "  - add: {id: mix, from: [add0, add1]}\n  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv2}\n")
    assert outcome(a, b) == {"changed": [("conv2", "conv2", ["inputs"])], "renamed": [], "added": ["mix"],
                             "removed": []}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_layers=6))
def test_a_spec_against_itself_is_identical(text):
    d = diff(archc.loads(text), archc.loads(text))
    assert d.identical and len(d.same) == len(d.a.nodes)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_layers=6), st.data())
def test_inserted_layers_are_exactly_the_added_ones(text, data):
    """k shape-keeping layers (a relu, as the spec may already have some) spliced in before
    random layers of a random spec: exactly those k are added, nothing else moves."""
    doc = yaml.safe_load(text)
    layers = doc["layers"]
    k = data.draw(st.integers(1, 3))
    for n in range(k):
        at = data.draw(st.integers(0, len(layers) - 1))
        op, body = next(iter(layers[at].items()))
        src = body["from"]
        first = src[0] if isinstance(src, list) else src
        layers.insert(at, {"relu": {"id": f"inserted{n}", "from": first}})
        body["from"] = [f"inserted{n}", *src[1:]] if isinstance(src, list) else f"inserted{n}"
    d = diff(archc.loads(text), archc.loads(yaml.safe_dump(doc, sort_keys=False)))
    assert sorted(m.name for m in d.added) == [f"inserted{n}" for n in range(k)]
    assert not (d.changed or d.removed or d.renamed)
