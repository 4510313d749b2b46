"""What an import found and did: rows read, problems by line, events by name, new vs already stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from quanyu.errors import QuanyuError

# Enough for a person to fix a file; the count of bad rows is always complete.
MAX_REPORTED_PROBLEMS = 200


@dataclass(frozen=True)
class Problem:
    line: int
    column: str | None
    code: str
    message: str

    def public(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "code": self.code, "message": self.message}


@dataclass
class ImportReport:
    kind: str
    format: str
    source_id: str
    encoding: str = ""
    rows: int = 0
    bad_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    new: int = 0
    already_stored: int = 0
    dry_run: bool = False
    written: bool = False
    seconds: float = 0.0

    def add_problem(self, problem: Problem) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(problem)

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": self.format,
            "source_id": self.source_id,
            "encoding": self.encoding,
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "problems": [p.public() for p in self.problems],
            "events": dict(sorted(self.events.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "new": self.new,
            "already_stored": self.already_stored,
            "dry_run": self.dry_run,
            "written": self.written,
            "seconds": round(self.seconds, 3),
        }


class BadRows(QuanyuError):
    """Some rows could not be read; nothing was written. `details` is the full report."""

    status = 422
    code = "bad_rows"

    def __init__(self, report: ImportReport) -> None:
        first = report.problems[0] if report.problems else None
        where = f"（第一处：第 {first.line} 行 {first.message}）/ (first: line {first.line})" if first else ""
        super().__init__(
            f"{report.bad_rows} 行有问题，未写入任何数据{where} / {report.bad_rows} bad rows: nothing was "
            "written (fix them, or pass --skip-bad to import the rest)",
            details=report.public(),
        )
        self.report = report
