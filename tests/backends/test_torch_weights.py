"""archc.load_weights: pairing rules, the report, refusals, mapping files, safe reading.

Small hand-written torch modules stand for foreign checkpoints; the torchvision zoo is in
test_torchvision_equivalence.py.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

import archc

torch = pytest.importorskip("torch")
nn = torch.nn

from archc.backends.torch.weights import WeightsError, match, read_mapping  # noqa: E402
from weights_cases import NEAR_MISFIT, near_lenet5  # noqa: E402

# conv (no bias) + batch norm + linear head, ids chosen unlike torch's Sequential numbers
SPEC = """archc: 1
name: small
input: [3, 8, 8]
vars: {classes: 5}
layers:
  - conv2d: {out: 4, kernel: 3, padding: 1, bias: false, id: stem}
  - batchnorm2d: {id: norm}
  - relu
  - global_avgpool
  - flatten
  - linear: {out: $classes, id: head}
"""


def foreign(classes=5, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))
    with torch.no_grad():  # statistics that differ from a fresh layer's, to see them copied
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].num_batches_tracked.fill_(7)
    return model.eval()


def ours(**overrides):
    return archc.build(text=SPEC, overrides=overrides or None, seed=1).eval()


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def unchanged(model, before) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ pairing and the report


def test_order_pairs_layers_and_copies_every_tensor(tmp_path):
    theirs, model = foreign(), ours()
    path = tmp_path / "theirs.pt"
    torch.save(theirs.state_dict(), path)
    report = archc.load_weights(model, path)
    assert [(p.target, p.source, p.how) for p in report.pairs] == [
        ("stem.weight", "0.weight", "order"), ("norm.weight", "1.weight", "order"),
        ("norm.bias", "1.bias", "order"), ("norm.running_mean", "1.running_mean", "order"),
        ("norm.running_var", "1.running_var", "order"), ("head.weight", "5.weight", "order"),
        ("head.bias", "5.bias", "order"), ("norm.num_batches_tracked", "1.num_batches_tracked", "counter")]
    assert model.norm.num_batches_tracked.item() == 7
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), theirs(x))
    assert str(report).splitlines() == [
        f"weights from {path}: 8 tensors paired (7 by order and shape, 1 by counter of its layer)",
        "paired by mapping or by order and shape (a * stands for the same tensor names): 3",
        "  stem.* <- 0.*", "  norm.* <- 1.*", "  head.* <- 5.*"]


def test_same_names_come_before_order():
    """`head` exists on both sides: it pairs by name even though order would pick `extra`."""
    target = {"a.weight": (4, 3), "head.weight": (2, 4)}
    source = {"a.weight": (4, 3), "extra.weight": (2, 4), "head.weight": (2, 4)}
    report = match(target, source)
    assert [(p.target, p.source, p.how) for p in report.pairs] == [
        ("a.weight", "a.weight", "name"), ("head.weight", "head.weight", "name")]
    assert report.unused == [("extra.weight", (2, 4))] and not report.complete


def test_an_extra_layer_on_one_side_shifts_nothing_else():
    target = {"c1.weight": (8, 3), "c1.bias": (8,), "c2.weight": (8, 8), "c2.bias": (8,), "fc.weight": (2, 8)}
    source = {"0.weight": (8, 3), "0.bias": (8,), "1.weight": (16, 8), "1.bias": (16,),
              "2.weight": (8, 8), "2.bias": (8,), "3.weight": (2, 8)}
    report = match(target, source)
    assert [(p.target, p.source) for p in report.pairs] == [
        ("c1.weight", "0.weight"), ("c1.bias", "0.bias"), ("c2.weight", "2.weight"),
        ("c2.bias", "2.bias"), ("fc.weight", "3.weight")]
    assert report.unused == [("1.weight", (16, 8)), ("1.bias", (16,))]
    assert report.ok and not report.missing


def test_within_a_layer_tensors_pair_by_name_not_by_position():
    """A batch norm whose tensors come in another order (as in a safetensors file): the
    bias never takes the running mean although both have shape (4,)."""
    target = {"bn.weight": (4,), "bn.bias": (4,), "bn.running_mean": (4,), "bn.running_var": (4,)}
    source = {"1.running_var": (4,), "1.bias": (4,), "1.weight": (4,), "1.running_mean": (4,)}
    assert {p.target: p.source for p in match(target, source).pairs} == {
        "bn.weight": "1.weight", "bn.bias": "1.bias", "bn.running_mean": "1.running_mean",
        "bn.running_var": "1.running_var"}


def test_unmatched_keys_are_reported_by_name_and_strict_refuses(tmp_path):
    """The source lacks the head: strict refuses and names it; strict=False loads the rest."""
    theirs, model = foreign(), ours()
    state = {k: v for k, v in theirs.state_dict().items() if not k.startswith("5.")}
    before = snapshot(model)
    with pytest.raises(WeightsError) as err:
        archc.load_weights(model, state)
    assert "model tensors without a source (left as they are): 2\n  head.weight (5, 4)\n  head.bias (5,)" in str(err.value)
    assert err.value.report.missing == [("head.weight", (5, 4)), ("head.bias", (5,))]
    assert unchanged(model, before)
    report = archc.load_weights(model, state, strict=False)
    assert report.missing == [("head.weight", (5, 4)), ("head.bias", (5,))]
    assert torch.equal(model.stem.weight, theirs[0].weight) and torch.equal(model.head.weight, before["head.weight"])


def test_unused_source_tensors_are_reported_by_name():
    state = dict(foreign().state_dict())
    state["aux.weight"] = torch.zeros(3, 3)
    with pytest.raises(WeightsError, match=r"source tensors not used: 1\n  aux\.weight \(3, 3\)"):
        archc.load_weights(ours(), state)
    assert archc.load_weights(ours(), state, strict=False).unused == [("aux.weight", (3, 3))]


def test_shape_conflict_is_refused_with_both_names_and_shapes_and_nothing_loaded(tmp_path):
    theirs, model = foreign(classes=7), ours()  # a 7-class head into a 5-class model
    before = snapshot(model)
    for strict in (True, False):
        with pytest.raises(WeightsError) as err:
            archc.load_weights(model, theirs.state_dict(), strict=strict)
        text = str(err.value)
        assert text.startswith("refused to load: ")
        assert "shape conflicts (nothing loaded): 2\n" in text
        assert "  head.weight (5, 4) <- 5.weight (7, 4) (order and shape)\n" in text
        assert "  head.bias (5,) <- 5.bias (7,) (order and shape)" in text
        assert unchanged(model, before)


def test_same_name_with_another_shape_is_a_conflict():
    report = match({"fc.weight": (10, 512)}, {"fc.weight": (1000, 512)})
    assert [str(c) for c in report.conflicts] == ["fc.weight (10, 512) <- fc.weight (1000, 512) (same name)"]
    assert not report.ok


# ------------------------------------------------------------------ counters


def test_a_source_without_batch_norm_counters_keeps_the_models_own():
    """Checkpoints from torch < 0.4.1 have no num_batches_tracked: not an error."""
    theirs, model = foreign(), ours()
    state = {k: v for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")}
    report = archc.load_weights(model, state)
    assert report.counters_kept == ["norm.num_batches_tracked"] and report.complete
    assert model.norm.num_batches_tracked.item() == 0
    assert torch.equal(model.norm.running_mean, theirs[1].running_mean)


def test_a_counter_follows_its_layer_not_its_name_or_position():
    """Counters listed apart from their layers, and a mapping that swaps two layers: each
    counter comes from the source layer that gave its layer's statistics."""
    target = {"a.running_mean": (2,), "a.num_batches_tracked": (), "b.running_mean": (2,),
              "b.num_batches_tracked": (), "c.running_mean": (3,), "c.num_batches_tracked": ()}
    source = {"a.running_mean": (2,), "b.running_mean": (2,), "x.running_mean": (3,),
              "x.num_batches_tracked": (), "b.num_batches_tracked": (), "a.num_batches_tracked": ()}
    report = match(target, source, read_mapping({"a.running_mean": "b.running_mean",
                                                 "b.running_mean": "a.running_mean"}))
    assert {p.target: (p.source, p.how) for p in report.pairs} == {
        "a.running_mean": ("b.running_mean", "mapping"), "b.running_mean": ("a.running_mean", "mapping"),
        "c.running_mean": ("x.running_mean", "order"), "a.num_batches_tracked": ("b.num_batches_tracked", "counter"),
        "b.num_batches_tracked": ("a.num_batches_tracked", "counter"),
        "c.num_batches_tracked": ("x.num_batches_tracked", "counter")}
    assert report.complete


# ------------------------------------------------------------------ mapping files


def test_yaml_mapping_with_prefix_rewrites_and_a_head_left_alone(tmp_path):
    theirs, model = foreign(classes=7), ours()
    head = model.head.weight.detach().clone()
    mapping = tmp_path / "map.yaml"
    mapping.write_text("# ours: theirs\nstem.weight: 0.weight\n'norm.': '1.'\n'head.': null\n")
    report = archc.load_weights(model, theirs.state_dict(), mapping=mapping, strict=False)
    assert {p.target: (p.source, p.how) for p in report.pairs} == {
        "stem.weight": ("0.weight", "mapping"), "norm.weight": ("1.weight", "mapping"),
        "norm.bias": ("1.bias", "mapping"), "norm.running_mean": ("1.running_mean", "mapping"),
        "norm.running_var": ("1.running_var", "mapping"),
        "norm.num_batches_tracked": ("1.num_batches_tracked", "mapping")}
    assert report.ignored == ["head.weight", "head.bias"]
    assert report.unused == [("5.weight", (7, 4)), ("5.bias", (7,))]
    assert torch.equal(model.head.weight, head) and torch.equal(model.norm.running_var, theirs[1].running_var)


def test_json_mapping_pairs_what_order_would_pair_otherwise(tmp_path):
    """Two layers of one shape swapped by the mapping: the mapping wins over order."""
    target = {"a.weight": (4, 4), "b.weight": (4, 4)}
    source = {"0.weight": (4, 4), "1.weight": (4, 4)}
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"a.weight": "1.weight"}))
    report = match(target, source, read_mapping(path))
    assert [(p.target, p.source, p.how) for p in report.pairs] == [
        ("a.weight", "1.weight", "mapping"), ("b.weight", "0.weight", "order")]


def test_a_mapping_entry_naming_an_absent_tensor_is_refused():
    with pytest.raises(WeightsError, match=r"mapping entries naming no tensor of the source: 1\n"
                                           r"  stem\.weight: features\.0\.weight \(the source has no"):
        archc.load_weights(ours(), foreign().state_dict(), mapping={"stem.weight": "features.0.weight"})


@pytest.mark.parametrize("mapping, message", [
    ({"head.": "5.weight"}, "a prefix rewrite needs prefixes on both sides"),
    ({"head.weight": 5}, "keys and values must be tensor names"),
    (["head.weight"], "a mapping must be a dict"),
])
def test_malformed_mappings_are_explained(mapping, message):
    with pytest.raises(WeightsError, match=message):
        read_mapping(mapping)


def test_mapping_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="cannot read the mapping file"):
        read_mapping(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(WeightsError, match="not a YAML/JSON mapping"):
        read_mapping(bad)


# ------------------------------------------------------------------ reading checkpoints


class Payload:
    """Unpickling this object would create ``marker`` (open(marker, "w"))."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    state = {"stem.weight": torch.zeros(4, 3, 3, 3), "payload": Payload(marker)}
    if writer == "torch.save":
        torch.save(state, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(state, fh, protocol=2)
    model = ours()
    before = snapshot(model)
    with pytest.raises(WeightsError, match=r"refused .*evil\.pt: it is not a plain weights file"):
        archc.load_weights(model, path)
    assert not marker.exists()
    assert unchanged(model, before)
    # The payload is live: an unsafe load would have run it (so the test above can fail).
    torch.load(path, weights_only=False) if writer == "torch.save" else pickle.loads(path.read_bytes())
    assert marker.exists()


def test_training_checkpoints_hold_the_state_dict_under_a_key(tmp_path):
    theirs = foreign()
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "state_dict": theirs.state_dict()}, path)
    model = ours()
    assert archc.load_weights(model, path).complete
    assert torch.equal(model.head.bias, theirs[5].bias)
    torch.save({"epoch": 3}, path)
    with pytest.raises(WeightsError, match=r"found no state_dict .* its keys: 'epoch'"):
        archc.load_weights(model, path)


def test_a_module_can_be_the_source():
    theirs, model = foreign(), ours()
    assert archc.load_weights(model, theirs).complete
    assert torch.equal(model.stem.weight, theirs[0].weight)


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        archc.load_weights(ours(), tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="junk.pt"):
        archc.load_weights(ours(), junk)


def test_safetensors_files_are_read_in_natural_name_order(tmp_path):
    """safetensors keeps no order (it sorts names: `10` before `2`): layers are taken in
    natural name order, and the report says so."""
    st = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    torch.manual_seed(0)
    theirs = nn.Sequential(*[nn.Linear(4, 4) for _ in range(11)], nn.Linear(4, 2))
    spec = "archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 4, repeat: 11, id: body}\n  - linear: {out: 2, id: head}\n"
    model = archc.build(text=spec, seed=1)
    path = tmp_path / "w.safetensors"
    st.save_file(theirs.state_dict(), str(path))
    report = archc.load_weights(model, path)
    assert {p.target: p.source for p in report.pairs}["body.10.weight"] == "10.weight"
    assert "natural name order" in str(report)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(model(x), theirs(x))


def test_importing_archc_does_not_import_torch():
    code = ("import sys, archc; assert 'load_weights' in archc.__all__; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_refusal_says_what_does_not_fit_in_its_first_line(tmp_path):
    path = near_lenet5(tmp_path / "near.pt")
    with pytest.raises(WeightsError) as err:
        archc.load_weights(archc.build("lenet5"), path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"refused to load: {path} {NEAR_MISFIT}"
    assert "  aux.weight (3, 3)" in lines  # then the whole report


def test_a_misfit_lists_the_first_three_of_each_kind():
    report = match({f"l{i}.weight": (2,) for i in range(5)}, {f"l{i}.weight": (3,) for i in range(5)})
    assert report.misfit("W", fix="F") == (
        "W does not fit this network: 5 shape conflicts (network vs weights: l0.weight (2,) vs l0.weight (3,), "
        "l1.weight (2,) vs l1.weight (3,), l2.weight (2,) vs l2.weight (3,), and 2 more); nothing paired — F")
