"""Shell completion of SPEC arguments (archc/completion.py): spec files and folders, zoo
names, FILE:NETWORK — asked directly, and through click's completion as bash asks it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

from archc.cli import main
from archc.completion import candidates
from archc.zoo import zoo_specs

GAN = "archc: 1\nnetworks:\n  generator:\n    input: [4]\n    layers: [relu]\n" \
      "  critic:\n    input: [4]\n    layers: [relu]\n"


@pytest.fixture
def here(tmp_path, monkeypatch):
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "gan.yaml").write_text(GAN)
    (tmp_path / "nets" / "mlp.yml").write_text("archc: 1\ninput: [4]\nlayers: [relu]\n")
    (tmp_path / "nets" / "notes.txt").write_text("not a spec")
    (tmp_path / "nets" / ".hidden.yaml").write_text(GAN)
    (tmp_path / "broken.yaml").write_text("networks: [oops\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_spec_files_and_folders_under_the_typed_path(here):
    assert candidates("nets/") == ["nets/gan.yaml", "nets/mlp.yml"]  # no .txt, no hidden file
    assert candidates("nets/.") == ["nets/.hidden.yaml"]
    assert candidates("nets/m") == ["nets/mlp.yml"]


def test_a_lone_folder_offers_its_contents(here):
    # bash ends a single completion with a space: "nets/ " would stop the word there
    assert candidates("ne") == ["nets/gan.yaml", "nets/mlp.yml"]


def test_zoo_names_complete_without_a_path(here):
    zoo = sorted(p.stem for p in zoo_specs())
    assert candidates("resnet") == [n for n in zoo if n.startswith("resnet")] and "resnet50" in zoo
    assert candidates("nets/res") == []  # a path is a path: no zoo names


def test_file_colon_network(here):
    assert candidates("nets/gan.yaml:") == ["nets/gan.yaml:generator", "nets/gan.yaml:critic"]
    assert candidates("nets/gan.yaml:c") == ["nets/gan.yaml:critic"]
    assert candidates("dcgan:") == ["dcgan:generator", "dcgan:discriminator"]  # a zoo name
    assert candidates("nets/mlp.yml:") == []  # one network: nothing to pick
    assert candidates("broken.yaml:") == [] and candidates("missing.yaml:") == []  # never fails


def complete(args: list[str], incomplete: str) -> list[str]:
    """What `archc ARGS INCOMPLETE<TAB>` offers in bash, through click's machinery."""
    shell = BashComplete(main, {}, "archc", "_ARCHC_COMPLETE")
    return [item.value for item in shell.get_completions(args, incomplete)]


@pytest.mark.parametrize("command", ["validate", "expand", "compile", "graph", "train", "export"])
def test_every_spec_argument_completes(here, command):
    assert complete([command], "nets/gan.yaml:g") == ["nets/gan.yaml:generator"]
    assert complete([command], "vgg1") == ["vgg16", "vgg16_bn", "vgg16_cifar10", "vgg19"]


def test_click_prints_the_bash_script():
    env = dict(os.environ, _ARCHC_COMPLETE="bash_source")
    script = Path(sys.executable).with_name("archc")  # the installed command, as a shell runs it
    proc = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert "complete -o nosort -F _archc_completion archc" in proc.stdout
