"""What a rules file may cost, declared once: a rules file is input, and input is not trusted.

A rules file comes from a merge request like any other; it must not be able to hang the gate or
exhaust the machine, and every problem in it is reported in one line of bounded length.
"""

from __future__ import annotations

MAX_RULES_BYTES = 1_000_000
"""The largest rules or waivers file read; real ones are a few kilobytes."""
MAX_DEPTH = 32
"""The deepest nesting of lists and mappings in a rules file."""
MAX_EXPANDED_SIZE = 4_000_000
"""The size of a rules document with every alias written out: one per list, mapping and scalar,
plus each scalar's characters. No file of :data:`MAX_RULES_BYTES` without aliases comes near it
(each character of YAML text adds at most about two); nested aliases ("billion laughs") go far
beyond it, and are refused before anything expands them."""
MAX_NUMBER_CHARS = 100
"""The longest integer a rules file may write (DICOM's are at most 64-bit, 20 digits)."""
MAX_PATTERN_CHARS = 1_000
"""The longest regular expression or path pattern in a rules file; real ones are tens of characters."""
MAX_QUOTED_CHARS = 100
"""The most characters of a pattern, value or text from a rules file or a DICOM file that a
message quotes: a longer one is cut and ends in ``…``."""


def clip(text: str) -> str:
    """``text``, cut to :data:`MAX_QUOTED_CHARS` (ending in ``…``) for quoting in a message."""
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


def quote(value: object) -> str:
    """``value`` as ``repr`` shows it (text in quotes), cut for a message. Text is cut before its
    repr is made; any other value from a rules file has a bounded repr, as the document has
    (:data:`MAX_EXPANDED_SIZE`)."""
    return repr(clip(value)) if isinstance(value, str) else clip(repr(value))
