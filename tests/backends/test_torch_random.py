"""At least 200 random valid specs (tests/strategies.py): the built module's shapes at
every node and its parameter and buffer counts equal the static analysis, and the
straight-line module equals the return-all one (tests/backends/torch_checks.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import archc
from strategies import specs
from torch_checks import check_graph


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_match_the_analysis(text):
    graph = archc.loads(text)
    check_graph(graph)
