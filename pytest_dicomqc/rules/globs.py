"""Path patterns for ``when: {path: ...}``, waivers and the non-DICOM policy.

``fnmatch`` lets ``*`` cross folders and has no ``**``; dataset layouts need both meanings:
``*`` stays inside one folder, ``**`` spans any number of them (``train/**``, ``**/*.json``).
Paths are dataset-relative with ``/`` separators, as in the report's ``path`` column.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pytest_dicomqc.rules.regex import Regex


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Regex:
    """A regex that fully matches the paths ``pattern`` describes: RE2, as ``*a*a*a…`` would make
    a backtracking one take exponential time."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return Regex("".join(parts))


def glob_matches(pattern: str, path: str) -> bool:
    return compile_glob(pattern).fullmatch(path)
