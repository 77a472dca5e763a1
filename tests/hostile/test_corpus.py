"""Replays tests/hostile/corpus/*.json: command lines and files that once ended (or could
end) in an internal error, a traceback or a wrong message — each found by the CLI fuzzer
(test_fuzz_cli.py) or by hand — in a real process under time and memory limits.

A case is JSON: ``why`` (what it is and what used to happen), ``args`` (after ``archc``),
``files`` (name -> {"text": ...} or {"base64": ...}, written to an empty folder),
``status`` (the exit status expected), ``says`` (text the output must hold) and
``writes`` (the only paths the command may create there).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from hostile_run import assert_clean_failure, listing, run_archc, text

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(CORPUS.glob("*.json"))


def materialise(case: dict, folder: Path) -> None:
    for name, content in case["files"].items():
        data = content["text"].encode("utf-8") if "text" in content else base64.b64decode(content["base64"])
        (folder / name).write_bytes(data)


def test_the_corpus_has_cases():
    assert len(CASES) >= 8


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_case(path, tmp_path):
    case = json.loads(path.read_text(encoding="utf-8"))
    materialise(case, tmp_path)
    before = listing(tmp_path)
    r = run_archc(case["args"], tmp_path, timeout=case.get("timeout", 90))
    out, err = text(r.stdout), text(r.stderr)
    if case["status"]:
        err = assert_clean_failure(r)
    assert r.returncode == case["status"], (r.returncode, err[-1500:])
    assert "Traceback" not in out + err and "internal error" not in out + err
    assert case["says"] in out + err, (out + err)[-1500:]
    new = {p.split("/")[0] for p in listing(tmp_path) - before}
    assert new <= set(case.get("writes", [])), new
