"""The zoo (specs/): every spec validates, and each network's numbers are exactly the
published ones.

The expected numbers are literals from independent references: torchvision's models
(``sum(p.numel() for p in model.parameters())``, its published GFLOPS — which are GMACs of
conv + linear, bias excluded), the course's Keras summaries (seeds) and hand formulas
written out below. Where torchvision is installed the tests also rebuild its models and
compare, so a drift on either side shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.spec.schema import SCHEMA_FILE
from archc.zoo import zoo_dir, zoo_specs
from references import torchvision_model

SPECS = zoo_dir()


def conv(cin, cout, k, bias=True):
    """Parameters of a k×k convolution."""
    return cout * cin * k * k + (cout if bias else 0)


# VGG-16's thirteen 3×3 convolutions (with bias), then the course's LIN(512, 10).
_VGG16_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
VGG16_CIFAR10_PARAMS = sum(conv(i, o, 3) for i, o in _VGG16_CONVS) + 512 * 10 + 10
# MACs at 32×32: stage s (0..4) runs at (32 / 2^s)², convolutions per stage 2, 2, 3, 3, 3.
_STAGE_OF = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
VGG16_CIFAR10_MACS = sum(o * i * 9 * (32 >> s) ** 2 for (i, o), s in zip(_VGG16_CONVS, _STAGE_OF)) + 5120

# (target, preset): params, buffers (BN running stats + counter), MACs, output shape
EXPECTED = {
    # seeds' Keras LeNet-5: "Trainable params: 61,706"
    # MACs: 6·28²·25 + 16·10²·150 + 120·400 + 120·84 + 84·10
    ("lenet5", None): (61_706, 0, 416_520, (10,)),
    # seeds: 401,920 + 262,656 + 5,130
    ("mnist_mlp", None): (669_706, 0, 784 * 512 + 512 * 512 + 512 * 10, (10,)),
    # seeds: 320 + 18,496 + 1,179,776 + 1,290; MACs 32·26²·9 + 64·24²·288 + 9216·128 + 1280
    ("mnist_cnn", None): (1_199_882, 0, 194_688 + 10_616_832 + 1_179_648 + 1_280, (10,)),
    ("alexnet", None): (61_100_840, 0, 714_188_480, (1000,)),
    ("vgg16", None): (138_357_544, 0, 15_470_264_320, (1000,)),
    ("vgg16", "vgg11"): (132_863_336, 0, 7_609_090_048, (1000,)),
    ("vgg16", "vgg13"): (133_047_848, 0, 11_308_466_176, (1000,)),
    ("vgg16", "vgg16"): (138_357_544, 0, 15_470_264_320, (1000,)),
    ("vgg16", "vgg19"): (143_667_240, 0, 19_632_062_464, (1000,)),
    ("vgg19", None): (143_667_240, 0, 19_632_062_464, (1000,)),
    # torchvision's vgg16_bn: 138,365,992 params; 13 batch norms' running stats (2 x 4,224
    # channels) and counters; batch norm adds no MACs
    ("vgg16_bn", None): (138_365_992, 2 * 4_224 + 13, 15_470_264_320, (1000,)),
    ("vgg16_bn", "vgg19_bn"): (143_678_248, 11_024, 19_632_062_464, (1000,)),
    ("vgg16_cifar10", None): (VGG16_CIFAR10_PARAMS, 0, VGG16_CIFAR10_MACS, (10,)),
    ("googlenet", None): (6_624_904, 14_617, 1_498_376_192, (1000,)),
    # torchvision's weights metadata: num_params 5,288,548 / 5,483,032, GFLOPS 0.386 / 0.217
    ("efficientnet_b0", None): (5_288_548, 42_065, 385_814_752, (1000,)),
    ("mobilenet_v3_large", None): (5_483_032, 24_446, 216_589_760, (1000,)),
    ("resnet18", None): (11_689_512, 9_620, 1_814_073_344, (1000,)),
    ("resnet34", None): (21_797_672, 17_060, 3_663_761_408, (1000,)),
    ("resnet50", None): (25_557_032, 53_173, 4_089_184_256, (1000,)),
    ("resnet50", "resnet50"): (25_557_032, 53_173, 4_089_184_256, (1000,)),
    ("resnet50", "resnet101"): (44_549_160, 105_448, 7_801_405_440, (1000,)),
    ("resnet50", "resnet152"): (60_192_808, 151_579, 11_513_626_624, (1000,)),
    # torchvision's vit_b_16 and convnext_tiny (17.56 and 4.46 GFLOPS published);
    # tests/backends/test_torchvision_transformers.py derives both MAC counts by formula
    # and with torch's flop counter on torchvision's models
    ("vit_b_16", None): (86_567_656, 0, 17_563_828_224, (1000,)),
    ("convnext_tiny", None): (28_589_128, 0, 4_455_531_264, (1000,)),
    ("unet", None): (31_030_658, 0, 150_428_424_448, (2, 388, 388)),
    # BN buffers 2C + 1: generator C = 512, 256, 128, 64; discriminator 128, 256, 512
    ("dcgan:generator", None): (3_576_704, 2 * 960 + 4, 104_628_224, (3, 64, 64)),
    ("dcgan:discriminator", None): (2_765_568, 2 * 896 + 3, 103_817_216, (1,)),
    # LSTM 4·64·(8 + 64) + 8·64 and the head 64·10 + 10; MACs 8 steps · 4 gates · (8·64 + 64·64) + 640
    # GPT-2 small (Radford et al. 2019): tests/test_gpt2.py derives both numbers
    ("gpt2", None): (124_439_808, 0, 145_824_153_600, (1024, 50257)),
    # wte 256·128 + wpe 64·128 + 4 blocks of 12·128² + 13·128 + ln_f 2·128 (lm_head tied);
    # MACs over 64 tokens: 4 blocks of 12·L·D² + 2·L²·D, the head L·D·256
    ("gpt_tiny", None): (834_304, 0, 4 * (12 * 64 * 128 ** 2 + 2 * 64 ** 2 * 128) + 64 * 128 * 256, (64, 256)),
    # conv 8·32·3 + 32, BN 2·32, conv 32·64·3 + 64, BN 2·64, head 64·10 + 10; MACs 8 positions · weights
    ("conv1d_digits", None): (7_850, 2 * 96 + 2, 8 * (8 * 32 * 3 + 32 * 64 * 3) + 640, (10,)),
    ("lstm_digits", None): (19_594, 0, 8 * 4 * (8 * 64 + 64 * 64) + 640, (10,)),
}

# torchvision's published GFLOPS (= GMACs) for the same networks at 224×224
TORCHVISION_GMACS = {"alexnet": 0.71, "vgg16": 15.47, "vgg16_bn": 15.47, "vgg19": 19.63, "googlenet": 1.50,
                     "efficientnet_b0": 0.39, "mobilenet_v3_large": 0.22,
                     "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09,
                     "vit_b_16": 17.56, "convnext_tiny": 4.46}


def target_path(target: str) -> str:
    stem, _, network = target.partition(":")
    return str(SPECS / f"{stem}.yaml") + (f":{network}" if network else "")


def test_the_zoo_holds_every_reference_network():
    names = {p.stem for p in zoo_specs()}
    assert names >= {"lenet5", "mnist_mlp", "mnist_cnn", "alexnet", "vgg16", "vgg19",
                     "vgg16_cifar10", "googlenet", "resnet18", "resnet34", "resnet50", "unet",
                     "dcgan"}


@pytest.mark.parametrize("path", zoo_specs(), ids=lambda p: p.stem)
def test_every_network_of_every_zoo_spec_validates(path):
    graphs = archc.load_all(str(path))
    assert graphs, f"{path.name} defines no network"
    for g in graphs:
        assert g.summary.total_params > 0
        assert all(n.meta.get("shape") for n in g.nodes), "every node has a static shape"
        label = path.stem if len(graphs) == 1 else f"{path.stem}:{g.name}"
        assert (label, None) in EXPECTED, f"add {label} to the table of expected numbers"
    result = CliRunner().invoke(main, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", zoo_specs(), ids=lambda p: p.stem)
def test_every_zoo_spec_reads_like_a_reference(path):
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../archc/spec/schema.json\n")
    header = text.split("archc: 1", 1)[0]
    assert header.count("\n# ") >= 2, "a header comment citing the source"


@pytest.mark.parametrize("path", zoo_specs(), ids=lambda p: p.stem)
def test_the_shipped_editor_schema_accepts_every_zoo_spec(path):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("target, preset", list(EXPECTED), ids=lambda v: str(v))
def test_zoo_numbers(target, preset):
    params, buffers, macs, out = EXPECTED[(target, preset)]
    g = archc.load(target_path(target), preset=preset)
    s = g.summary
    assert (s.total_params, s.trainable_params, s.buffers, s.macs) == (params, params, buffers, macs)
    assert s.output_shapes == [out]


def test_vgg16_cifar10_is_the_course_network():
    # the seeds' walk-through: 3×32×32 → … → 512×1×1 → LIN(512, 10)
    assert VGG16_CIFAR10_PARAMS == 14_719_818
    g = archc.load(target_path("vgg16_cifar10"))
    assert g.input_shape == (3, 32, 32)
    assert g.node("stage5.pool").meta["shape"] == (512, 1, 1)
    assert [n.op for n in g.nodes].count("linear") == 1
    assert [n.op for n in g.nodes].count("conv2d") == 13


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision_published_gflops(name):
    g = archc.load(target_path(name))
    assert round(g.summary.macs / 1e9, 2) == TORCHVISION_GMACS[name]


def test_lenet5_train_section():
    g = archc.load(target_path("lenet5"))
    assert g.input_shape == (1, 32, 32)
    t = g.train
    assert (t["task"], t["data"]["source"], t["batch_size"], t["epochs"]) == (
        "classification", "digits", 64, 8)
    assert t["optimizer"] == {"name": "adam", "lr": 4e-3}
    assert t["schedule"] == {"name": "cosine", "warmup_epochs": 1}
    assert [n.op for n in g.nodes if n.op in ("conv2d", "avgpool2d", "linear")] == [
        "conv2d", "avgpool2d", "conv2d", "avgpool2d", "conv2d", "linear", "linear"]


def test_unet_crops_and_concatenates_the_skips():
    g = archc.load(target_path("unet"))
    assert g.node("skip4").inputs == ["enc4.relu_2", "up4"]
    assert g.node("skip4").meta["shape"] == (512, 56, 56)
    assert g.node("cat1").meta["shape"] == (128, 392, 392)
    assert [n.op for n in g.nodes].count("conv_transpose2d") == 4


def test_resnet_ids_read_like_torchvision():
    names = {n.name for n in archc.load(target_path("resnet50")).nodes}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer1.0.downsample.0", "layer3.5.bn3",
            "layer4.2.conv3", "fc"} <= names
    assert "layer1.1.downsample.0" not in names  # identity shortcut: no projection


# -- torchvision, where installed: the same models rebuilt -------------------------------

TORCHVISION_BUILDS = [("alexnet", None, "alexnet"), ("vgg16", None, "vgg16"),
                      ("vgg16", "vgg11", "vgg11"), ("vgg16", "vgg13", "vgg13"),
                      ("vgg19", None, "vgg19"), ("vgg16_bn", None, "vgg16_bn"),
                      ("vgg16_bn", "vgg11_bn", "vgg11_bn"), ("googlenet", None, "googlenet"),
                      ("efficientnet_b0", None, "efficientnet_b0"),
                      ("mobilenet_v3_large", None, "mobilenet_v3_large"),
                      ("resnet18", None, "resnet18"), ("resnet34", None, "resnet34"),
                      ("resnet50", None, "resnet50"), ("resnet50", "resnet101", "resnet101"),
                      ("resnet50", "resnet152", "resnet152")]


@pytest.mark.parametrize("target, preset, name", TORCHVISION_BUILDS, ids=lambda v: str(v))
def test_counts_equal_torchvision_models(target, preset, name):
    model = torchvision_model(name)
    s = archc.load(target_path(target), preset=preset).summary
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert s.buffers == sum(b.numel() for b in model.buffers())


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_parameter_holders_match_torchvision_module_names(name):
    model = torchvision_model(name)
    theirs = {k.rsplit(".", 1)[0] for k, _ in model.named_parameters()}
    ours = {n.name for n in archc.load(target_path(name)).nodes if n.meta.get("params")}
    assert ours == theirs


def test_googlenet_parameter_holders_match_torchvision_module_names():
    model = torchvision_model("googlenet")
    renames = {"branch2.0": "branch2_reduce", "branch2.1": "branch2", "branch3.0": "branch3_reduce",
               "branch3.1": "branch3", "branch4.1": "branch4"}
    theirs = set()
    for key, _ in model.named_parameters():
        module = key.rsplit(".", 1)[0]
        for old, new in renames.items():
            module = module.replace(old, new)
        theirs.add(module)
    ours = {n.name for n in archc.load(target_path("googlenet")).nodes if n.meta.get("params")}
    assert ours == theirs


# -- the CLI lists the zoo ---------------------------------------------------------------

def test_archc_zoo_lists_every_network():
    result = CliRunner().invoke(main, ["zoo", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {e["spec"]: e for e in json.loads(result.output)}
    assert set(listed) == {t for t, preset in EXPECTED if preset is None}
    for (target, preset), (params, _, macs, _) in EXPECTED.items():
        if preset is None:
            assert (listed[target]["total_params"], listed[target]["macs"]) == (params, macs)


def test_archc_zoo_table_and_validate_by_zoo_name():
    runner = CliRunner()
    table = runner.invoke(main, ["zoo"])
    assert table.exit_code == 0
    assert "resnet50" in table.output and "25,557,032" in table.output
    assert "dcgan:discriminator" in table.output
    result = runner.invoke(main, ["validate", "resnet50", "--preset", "resnet101", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["name"], report["total_params"], report["macs"]) == (
        "resnet50", 44_549_160, 7_801_405_440)


def test_zoo_dir_is_the_repository_specs():
    assert zoo_dir() == Path(__file__).resolve().parents[1] / "specs"
