"""Independent reference models the tests compare archc against."""

import pytest


def torchvision_model(name):
    """torchvision's model `name` with random weights; skips the test without torchvision.
    GoogLeNet without auxiliary heads or input transform, as the zoo's spec builds it."""
    models = pytest.importorskip("torchvision.models")
    kwargs = {}
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": False, "transform_input": False}
    return getattr(models, name)(weights=None, **kwargs)
