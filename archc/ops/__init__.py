"""Op kinds. Importing this package registers every op in archc.ops.registry.REGISTRY.

To add an op: write its class in one of these modules (or a new one listed here),
decorate it with @register, and add its case to tests/ops/."""

from archc.ops import (activation, attention, conv, dropout, linear, merge, norm,  # noqa: F401
                       pool, recurrent, reshape, residual, resize, tensor, tokens)
from archc.ops.registry import REGISTRY, Op, get_op, register  # noqa: F401
