"""`trainable: false` on a block call freezes every layer of the instance (nested blocks
included), as it does on an op layer; parameter counts move to non-trainable."""

from __future__ import annotations

import archc

SPEC = """\
archc: 1
input: [4]
blocks:
  inner:
    layers:
      - linear: {out: 3}            # 4*3 + 3 = 15
  outer:
    layers:
      - inner
      - linear: {out: 2}            # 3*2 + 2 = 8
layers:
  - outer: {trainable: false, id: frozen}
  - outer: {id: free}               # input [2]: 2*3+3 = 9, then 8
"""


def test_block_call_freezes_its_layers():
    g = archc.loads(SPEC)
    frozen = {n.name: n.meta["trainable"] for n in g.nodes}
    assert frozen == {"frozen.inner_1.linear_1": False, "frozen.linear_1": False,
                      "free.inner_1.linear_1": True, "free.linear_1": True}
    s = g.summary
    assert (s.total_params, s.trainable_params, s.non_trainable) == (40, 17, 23)


def test_a_layer_of_a_free_block_can_still_be_frozen_alone():
    g = archc.loads(SPEC.replace("      - linear: {out: 2}", "      - linear: {out: 2, trainable: false}"))
    assert g.summary.trainable_params == 9  # only free.inner_1.linear_1
