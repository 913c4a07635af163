"""Regular expressions of a rules file (``matches:``, ``split:``, path globs), matched by RE2.

Python's ``re`` backtracks: ``(a+)+$`` against forty ``a`` and a ``!`` runs for hours, and a
rules file must not be able to hang the gate. RE2 (the ``google-re2`` package) matches in time
linear in the text whatever the pattern; what it gives up for that (backreferences, look-around,
possessive quantifiers…) is refused when the rules load, naming the construct. The syntax is
otherwise Python's for the patterns rules use (``\\d``, ``\\w``, ``\\s`` are ASCII in RE2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

from pytest_dicomqc.rules.limits import MAX_PATTERN_CHARS, clip, quote

_LINEAR = "(RE2 syntax, linear time)"
_UNSUPPORTED = (
    # (how the construct RE2 complains about starts, what it is): the first that fits names it
    ("\\g", "backreferences (\\g<…>) are"),
    ("\\k", "backreferences (\\k<…>) are"),
    ("\\Z", "\\Z (RE2 writes the end of the text \\z) is"),
    ("(?P", "named backreferences (?P=…) are"),
    ("(?=", "look-ahead (?=…) is"),
    ("(?!", "negative look-ahead (?!…) is"),
    ("(?<=", "look-behind (?<=…) is"),
    ("(?<!", "negative look-behind (?<!…) is"),
    ("(?>", "atomic groups (?>…) are"),
    ("(?(", "conditional groups (?(…) are"),
    ("(?#", "comments (?#…) are"),
)
_BACKREFERENCE = re.compile(r"\\[1-9]")
_POSSESSIVE = re.compile(r".*[*+?}]\+")
_FLAG = re.compile(r"\(\?[a-zA-Z-]")


class RegexError(ValueError):
    """A pattern RE2 cannot use; the message names the pattern (cut) and the problem."""


@dataclass(frozen=True)
class Regex:
    """A compiled rules-file pattern; equal when written the same.

    ``groups``: whether :meth:`prefix` reads the first group (``split:``). Without it RE2 does
    not track groups, which keeps a long value with a large pattern fast (``matches:``).
    """

    pattern: str
    groups: bool = False
    compiled: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print the whole pattern on stderr
        options.never_capture = not self.groups
        try:
            compiled = re2.compile(_utf8(self.pattern), options)
        except re2.error as exc:
            raise RegexError(
                f"invalid regular expression {quote(self.pattern)}: {_problem(self.pattern, exc)}"
            ) from None
        object.__setattr__(self, "compiled", compiled)

    def fullmatch(self, text: str) -> bool:
        return self.compiled.fullmatch(_utf8(text)) is not None

    def prefix(self, text: str) -> str | None:
        """The first group (else the whole match) of a match at the start of ``text``; None if none."""
        match = self.compiled.match(_utf8(text))
        if match is None:
            return None
        found: bytes = match.group(1) if self.groups and self.compiled.groups else match.group(0)
        return found.decode("utf-8", "surrogatepass")


def _utf8(text: str) -> bytes:
    """``text`` as RE2 reads it. A file name that is not UTF-8 holds lone surrogates (``caf\\udce9``);
    encoded as they are, RE2 reads each as one character, as Python's ``re`` does."""
    return text.encode("utf-8", "surrogatepass")


def compile_regex(pattern: str, groups: bool = False) -> Regex:
    """``pattern`` of a rules file compiled; :class:`RegexError` if too long or RE2 cannot use it."""
    check_length(pattern, "regular expression")
    return Regex(pattern, groups)


def check_length(pattern: str, what: str) -> None:
    """:class:`RegexError` for a pattern longer than :data:`MAX_PATTERN_CHARS`: compiling one
    costs time and memory, and real rules need tens of characters."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(f"{what} {quote(pattern)} is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS}")


def _problem(pattern: str, exc: re2.error) -> str:
    """The construct RE2 lacks, by name; else Python's own words for a syntax error; else RE2's."""
    complaint = exc.args[0].decode("utf-8", "replace") if isinstance(exc.args[0], bytes) else str(exc)
    kind, _, construct = complaint.partition(": ")
    if kind.startswith("pattern too large"):
        return f"the pattern is too large for RE2 to compile {_LINEAR}"
    if _BACKREFERENCE.match(construct):
        return f"backreferences ({clip(construct)}) are not supported {_LINEAR}"
    for start, construct_is in _UNSUPPORTED:
        if construct.startswith(start):
            return f"{construct_is} not supported {_LINEAR}"
    if kind == "bad repetition operator" and _POSSESSIVE.match(construct):
        return f"possessive quantifiers ({clip(construct)}) are not supported {_LINEAR}"
    if _FLAG.match(construct):
        return f"the flag {clip(construct)}) is not supported, only i, m, s and U {_LINEAR}"
    try:
        re.compile(pattern)  # bounded: the pattern is short, and compiling matches nothing
    except re.error as python_error:
        return str(python_error)
    return f"{clip(complaint)} {_LINEAR}"
