"""archc.load / load_all (archc/api.py) and the package's namespace (archc/__init__.py)."""

from __future__ import annotations

import archc
from archc.zoo import zoo_dir


def test_load_takes_zoo_names_as_the_cli_does():
    by_name = archc.load("lenet5")
    by_path = archc.load(str(zoo_dir() / "lenet5.yaml"))
    assert by_name.name == by_path.name == "lenet5"
    assert by_name.summary.total_params == by_path.summary.total_params == 61706  # the classic LeNet-5 count
    assert archc.load("dcgan:generator").name == "generator"
    assert [g.name for g in archc.load_all("dcgan")] == ["generator", "discriminator"]


def test_dir_lists_the_lazy_public_names():
    names = dir(archc)
    assert set(archc.__all__) <= set(names), set(archc.__all__) - set(names)
    assert names == sorted(names)
