"""A small, safe JSON-path subset for webhook mappings: `$`, `.key`, `['key']`, `[n]`, `[*]`.

Mappings are typed by workspace users and run on every pushed request, so the language is parsed
by hand into a tuple of steps and walked over plain JSON values: no eval, no filters, no
recursion (`..`), no slices, and bounded in length and depth. A path also names where something
is in a document, which is how mapping and payload errors are located (`$.data.orders[3].ts`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_PATH_LENGTH = 512
MAX_STEPS = 32
# A bare `.key` may hold letters (any script: Chinese field names are common), digits, `_` and `-`;
# anything else is written `['key']`.
_BARE = re.compile(r"[^\W\d][\w\-]*")
_INDEX = re.compile(r"-?(0|[1-9][0-9]{0,8})\]")


class JsonPathError(ValueError):
    """A path that does not parse; `position` is the 0-based offset of the problem."""

    def __init__(self, path: str, position: int, reason: str) -> None:
        super().__init__(f"JSON 路径无效 / invalid JSON path {path!r} at {position}: {reason}")
        self.path = path
        self.position = position
        self.reason = reason


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Wildcard:
    pass


Step = Key | Index | Wildcard


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]

    @property
    def wildcards(self) -> int:
        return sum(isinstance(s, Wildcard) for s in self.steps)

    def __str__(self) -> str:
        return format_path(self.steps)

    def find(self, document: Any) -> list[tuple[str, Any]]:
        """Every (concrete path, value) the path reaches; empty when it reaches nothing."""
        return list(_walk(document, self.steps, "$"))

    def get(self, document: Any) -> tuple[bool, Any]:
        """(found, value) for a path without wildcards."""
        current = document
        for step in self.steps:
            found, current = _step(current, step)
            if not found:
                return False, None
        return True, current


def parse(text: str) -> Path:
    """Parse `text` or raise JsonPathError with the offset of the first problem."""
    if not isinstance(text, str):
        raise JsonPathError(str(text), 0, "路径必须是字符串 / a path must be a string")
    if len(text) > MAX_PATH_LENGTH:
        raise JsonPathError(text[:40] + "…", MAX_PATH_LENGTH, f"longer than {MAX_PATH_LENGTH} characters")
    if not text.startswith("$"):
        raise JsonPathError(text, 0, "必须以 $ 开头 / must start with $")
    steps: list[Step] = []
    i, n = 1, len(text)
    while i < n:
        if len(steps) >= MAX_STEPS:
            raise JsonPathError(text, i, f"more than {MAX_STEPS} steps")
        char = text[i]
        if char == ".":
            match = _BARE.match(text, i + 1)
            if match is None:
                raise JsonPathError(text, i + 1, "'.' 后需要键名 / expected a key name after '.'")
            steps.append(Key(match.group()))
            i = match.end()
        elif char == "[":
            step, i = _bracket(text, i)
            steps.append(step)
        else:
            raise JsonPathError(text, i, f"意外的字符 / unexpected character {char!r}")
    return Path(tuple(steps))


def _bracket(text: str, start: int) -> tuple[Step, int]:
    i = start + 1
    n = len(text)
    if i >= n:
        raise JsonPathError(text, i, "未闭合的 [ / unclosed [")
    char = text[i]
    if char == "*":
        if text[i + 1 : i + 2] != "]":
            raise JsonPathError(text, i + 1, "expected ]")
        return Wildcard(), i + 2
    if char in "'\"":
        quote, i = char, i + 1
        out: list[str] = []
        while i < n and text[i] != quote:
            if text[i] == "\\":
                if i + 1 >= n or text[i + 1] not in (quote, "\\"):
                    raise JsonPathError(
                        text, i, "只能转义引号和反斜杠 / only the quote and \\ may be escaped"
                    )
                i += 1
            out.append(text[i])
            i += 1
        if i >= n:
            raise JsonPathError(text, start, "未闭合的引号 / unclosed quote")
        if text[i + 1 : i + 2] != "]":
            raise JsonPathError(text, i + 1, "expected ]")
        return Key("".join(out)), i + 2
    match = _INDEX.match(text, i)
    if match is None:
        raise JsonPathError(text, i, "[] 内须为整数、* 或带引号的键 / expected an integer, * or a quoted key")
    return Index(int(match.group()[:-1])), match.end()


def format_path(steps: tuple[Step, ...] | list[Step]) -> str:
    """The canonical text of `steps` (`parse(format_path(s)).steps == s`)."""
    out = ["$"]
    for step in steps:
        if isinstance(step, Key):
            out.append(key_step(step.name))
        elif isinstance(step, Index):
            out.append(f"[{step.index}]")
        else:
            out.append("[*]")
    return "".join(out)


def key_step(name: str) -> str:
    """`.name` when it can be written bare, else `['name']` with quote and backslash escaped."""
    if _BARE.fullmatch(name):
        return f".{name}"
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _step(current: Any, step: Step) -> tuple[bool, Any]:
    if isinstance(step, Key):
        if isinstance(current, dict) and step.name in current:
            return True, current[step.name]
        return False, None
    if isinstance(step, Index):
        if isinstance(current, list) and -len(current) <= step.index < len(current):
            return True, current[step.index]
        return False, None
    return False, None  # a wildcard is walked by _walk


def _walk(current: Any, steps: tuple[Step, ...], where: str) -> Iterator[tuple[str, Any]]:
    if not steps:
        yield where, current
        return
    step, rest = steps[0], steps[1:]
    if isinstance(step, Wildcard):
        if isinstance(current, list):
            for i, value in enumerate(current):
                yield from _walk(value, rest, f"{where}[{i}]")
        elif isinstance(current, dict):
            for name, value in current.items():
                yield from _walk(value, rest, where + key_step(str(name)))
        return
    found, value = _step(current, step)
    if found:
        if isinstance(step, Index) and step.index < 0 and isinstance(current, list):
            label = f"[{len(current) + step.index}]"  # the concrete position, not "from the end"
        else:
            label = format_path([step])[1:]
        yield from _walk(value, rest, where + label)
