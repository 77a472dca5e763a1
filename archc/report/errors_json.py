"""Errors as JSON: what `archc validate --format json` prints for an invalid spec, and the
document of several specs checked at once (docs/json.md, archc/report/errors.schema.json).

An editor plugin or a CI job reads positions and messages from here instead of parsing
the `FILE:LINE:COL: error: ...` lines. Unknown values are ``null``, as in the report."""

from __future__ import annotations

import json

from archc.errors import Pos, SpecError

ERRORS_FORMAT = "archc.errors/1"
RESULTS_FORMAT = "archc.results/1"


def _where(pos: Pos | None, file: str) -> dict:
    """file, line, column of ``pos``; line and column are null when not known."""
    return {"file": pos.file if pos else file,
            "line": pos.line if pos and pos.line else None,
            "column": pos.col if pos and pos.line and pos.col else None}


def error_dict(e: SpecError, file: str) -> dict:
    """One error; ``file`` is the spec's, for errors that carry no position."""
    return {**_where(e.pos, file),
            "path": e.path or None,
            "message": e.message,
            "fix": e.fix or None,
            # every SpecError stops the build today; lint warnings and notes may not
            "severity": getattr(e, "severity", "error"),
            "notes": [{**_where(pos, file), "message": text} for pos, text in e.notes]}


def errors_document(file: str, errors: list[SpecError]) -> dict:
    """The document of one spec that did not validate (or a path that is not there)."""
    return {"format": ERRORS_FORMAT, "file": file, "errors": [error_dict(e, file) for e in errors]}


def results_document(outcomes) -> dict:
    """Several specs: a summary, then per spec its file, status, report (when valid) and
    errors (when not)."""
    from archc.report.json_report import render
    from archc.validate_many import summary_line

    count = {s: sum(o.status == s for o in outcomes) for s in ("valid", "invalid", "not_found")}
    return {"format": RESULTS_FORMAT,
            "summary": {"specs": len(outcomes), "valid": count["valid"], "with_errors": count["invalid"],
                        "not_found": count["not_found"], "text": summary_line(outcomes)},
            "specs": [{"file": o.file, "status": o.status,
                       "report": json.loads(render(o.graphs)) if o.status == "valid" else None,
                       "errors": outcome_errors(o)["errors"]} for o in outcomes]}


def outcome_errors(o) -> dict:
    """An Outcome's errors document; a path that is not there is one error without a line."""
    errors = o.errors or ([SpecError(o.not_found, Pos(o.file))] if o.not_found else [])
    return errors_document(o.file, errors)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)
