"""The HTML report in a real browser: Debian's headless Chromium driven by Selenium.

Asserts what a reader needs: every top-level layer and block is drawn, no two boxes
overlap (bounding boxes read from the DOM), opening a block shows its inner layers, and
clicking a layer shows its details. One screenshot per spec is written to the test's
temporary folder, or to $ARCHC_SCREENSHOTS (docs/img is refreshed that way, docs/graph.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import archc
from archc.report.graph import html
from archc.zoo import zoo_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,1400", "--hide-scrollbars"]


def _missing() -> str | None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        return ("headless Chromium is not installed (Debian packages chromium and "
                "chromium-driver; `make test` installs them when run as root)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-test.txt)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # Debian's browser: Selenium downloads nothing
    profile = tempfile.mkdtemp(prefix="archc-chromium-")
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, tmp_path, spec: str, depth: int = 1) -> dict:
    path = zoo_dir() / f"{spec}.yaml"
    g = archc.load(os.path.relpath(path) if Path.cwd() in path.parents else str(path))
    page = tmp_path / f"{spec}.html"
    page.write_text(html.render(g, depth), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.execute_script("return document.body.dataset.rendered") == "1"
    return {"graph": g, "page": page}


BOXES_JS = """
return [...document.querySelectorAll('#graph .box')].map(function (g) {
  var r = g.querySelector('rect').getBoundingClientRect();
  return {id: g.dataset.id, cls: g.getAttribute('class'), x: r.left, y: r.top, w: r.width, h: r.height};
});"""


TEXT_OUTSIDE_JS = """
return [...document.querySelectorAll('#graph .box')].filter(function (g) {
  var r = g.querySelector('rect').getBoundingClientRect();
  return [...g.querySelectorAll('text')].some(function (t) {
    var b = t.getBoundingClientRect();
    return b.left < r.left || b.right > r.right || b.top < r.top || b.bottom > r.bottom;
  });
}).map(function (g) { return g.dataset.id; });"""


def boxes(browser) -> dict:
    return {b["id"]: b for b in browser.execute_script(BOXES_JS)}


def overlaps(bs: dict) -> list[tuple[str, str]]:
    items = sorted(bs.values(), key=lambda b: b["y"])
    out = []
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if b["y"] >= a["y"] + a["h"]:
                break  # sorted by top: nothing further down can reach a
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]:
                out.append((a["id"], b["id"]))
    return out


FRAMES_JS = """
function r(e) { var b = e.getBoundingClientRect();
  return {x: b.left, y: b.top, w: b.width, h: b.height, id: e.parentNode.dataset.id}; }
return {titles: [...document.querySelectorAll('#graph .cluster-title text')].map(r),
        clusters: [...document.querySelectorAll('#graph .cluster rect')].map(r)};"""


def meet(a, b) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def inside(a, b, eps=0.5) -> bool:
    """a lies within b."""
    return (b["x"] <= a["x"] + eps and b["y"] <= a["y"] + eps
            and a["x"] + a["w"] <= b["x"] + b["w"] + eps and a["y"] + a["h"] <= b["y"] + b["h"] + eps)


def click(browser, selector: str) -> None:
    """A click as the reader makes it, dispatched on the element (the sticky header may
    cover it in the viewport)."""
    browser.execute_script(
        "document.querySelector(arguments[0]).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        selector)


def screenshot(browser, name: str, tmp_path: Path, scroll_to: str | None = None) -> Path:
    if scroll_to:
        browser.execute_script(
            "var r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "window.scrollTo(0, window.scrollY + r.top - document.getElementById('head').offsetHeight - 60);",
            scroll_to)
    target = Path(os.environ.get("ARCHC_SCREENSHOTS") or tmp_path) / f"graph-{name}.png"
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("ARCHC_SCREENSHOTS"):
        shrink(target)
    return target


def shrink(png: Path) -> None:
    """64 colours (the page uses fewer) keep a docs/img picture small and sharp."""
    from PIL import Image

    with Image.open(png) as im:
        small = im.convert("RGB").quantize(64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


def top_level(g) -> set[str]:
    return {n.scope[0] if n.scope else n.name for n in g.nodes}


# (spec, the block the screenshot shows, depth the page opens with)
CASES = [("resnet18", None, 1), ("googlenet", '.cluster[data-id="inception3a"]', 1), ("unet", None, 0)]


@pytest.mark.parametrize("spec,scroll_to,depth", CASES)
def test_page_draws_the_network_without_overlaps(browser, tmp_path, spec, scroll_to, depth):
    g = open_page(browser, tmp_path, spec, depth)["graph"]
    drawn = boxes(browser)
    clusters = set(browser.execute_script(
        "return [...document.querySelectorAll('#graph .cluster')].map(c => c.dataset.id)"))
    assert top_level(g) <= set(drawn) | clusters  # every top-level layer and block is there
    assert "input" in drawn
    assert all(b["w"] > 0 and b["h"] > 0 for b in drawn.values())
    assert overlaps(drawn) == []
    assert browser.execute_script(TEXT_OUTSIDE_JS) == []  # every line fits in its box
    edges = browser.execute_script("return document.querySelectorAll('#graph path.edge').length")
    assert edges >= len(drawn) - 1  # connected: at least a spanning tree of arrows
    screenshot(browser, spec, tmp_path, scroll_to)


@pytest.mark.parametrize("spec", ["resnet18", "googlenet", "unet"])
def test_opening_a_block_shows_its_layers(browser, tmp_path, spec):
    g = open_page(browser, tmp_path, spec, depth=0)["graph"]
    first = next(n for n in g.nodes if n.scope)
    block = first.scope[0]
    assert block in boxes(browser) and first.name not in boxes(browser)
    click(browser, f'#graph .box[data-id="{block}"]')
    drawn = boxes(browser)
    assert block not in drawn  # now a cluster around its contents
    inner = {n.name if len(n.scope) == 1 else ".".join(n.scope[:2])
             for n in g.nodes if n.scope and n.scope[0] == block}
    assert inner <= set(drawn)
    assert overlaps(drawn) == []
    click(browser, f'#graph .cluster-title[data-id="{block}"]')  # and closes again
    assert block in boxes(browser)


@pytest.mark.parametrize("spec", ["resnet50", "googlenet"])
def test_everything_open_still_has_no_overlaps(browser, tmp_path, spec):
    g = open_page(browser, tmp_path, spec)["graph"]
    click(browser, "#expand-all")
    drawn = boxes(browser)
    assert {n.name for n in g.nodes} | {"input"} == set(drawn)
    assert overlaps(drawn) == []
    skips = browser.execute_script("return document.querySelectorAll('#graph path.edge.skip').length")
    assert skips > 0  # ResNet's shortcuts, Inception's short branches are drawn as skips
    frames = browser.execute_script(FRAMES_JS)
    titles, clusters = frames["titles"], frames["clusters"]
    assert len(titles) == len(clusters) > 0
    assert [(t["id"], b["id"]) for t in titles for b in drawn.values() if meet(t, b)] == []
    # a frame holds a box or a frame whole, or stays clear of it: nothing is cut
    for c in clusters:
        for other in list(drawn.values()) + clusters:
            assert not meet(c, other) or inside(other, c) or inside(c, other), (c["id"], other["id"])


def test_clicking_a_layer_shows_all_its_details(browser, tmp_path):
    g = open_page(browser, tmp_path, "resnet18")["graph"]
    n = g.node("layer1.0.conv1") if "layer1.0.conv1" in {x.name for x in g.nodes} else next(
        x for x in g.nodes if x.scope and x.op == "conv2d")
    click(browser, "#expand-all")
    click(browser, f'#graph .box[data-id="{n.name}"]')
    text = browser.execute_script("return document.getElementById('details').innerText")
    assert browser.execute_script("return document.getElementById('details').hidden") is False
    assert n.name in text
    assert f"{n.pos.file}:{n.pos.line}:{n.pos.col}" in text
    assert f"{n.meta['macs']:,}" in text  # MACs, exactly
    assert "receptive field" in text and n.meta["rf"].text() in text
    for key in n.attrs:
        assert key in text
    tip = browser.execute_script(
        "return document.querySelector(arguments[0]).textContent", f'#graph .box[data-id="{n.name}"] > title')
    assert "kernel: [3, 3]" in tip and f"{n.pos.file}:{n.pos.line}" in tip and "receptive field" in tip
    marked = browser.execute_script(
        "return [...document.querySelectorAll('#graph .box.output')].map(g => g.dataset.id)")
    assert marked == g.outputs


EDGES_JS = """
return [...document.querySelectorAll('#graph path.edge')].map(function (p) {
  return [p.dataset.from, p.dataset.to, p.classList.contains('skip')];
});"""


@pytest.mark.parametrize("spec", ["resnet50", "googlenet", "unet"])
def test_page_draws_what_the_static_formats_draw(browser, tmp_path, spec):
    """The page's script and archc/report/graph/view.py agree on boxes, edges and skips
    (the DOT and Mermaid files are made from view.py)."""
    from archc.report.graph import view

    g = open_page(browser, tmp_path, spec)["graph"]
    for depth, button in ((1, None), (view.UNLIMITED, "#expand-all"), (0, "#collapse-all")):
        if button:
            click(browser, button)
        drawn = browser.execute_script(EDGES_JS)
        assert set(boxes(browser)) == {b.id for b in view.boxes(g, depth)}
        assert {(a, b) for a, b, _ in drawn} == set(view.edges(g, depth))
        assert {(a, b) for a, b, skip in drawn if skip} == view.skip_edges(g, depth)
