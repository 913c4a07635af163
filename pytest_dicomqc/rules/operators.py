"""The rule operators, declared once: the loader, the evaluator and the findings read this table.

Each :class:`Operator` says how its operand is read from YAML (and what is wrong with a bad one),
when a value satisfies it, and how the expected side of a finding reads. A new operator is one
more entry in :data:`OPERATORS` (and its key in ``rules.schema.json``, which a test compares).

Multi-valued tags: ``contains``/``not_contains`` look for one value among them,
``contains_any``/``contains_all`` for one/all of a list, ``in`` needs every value in the list,
``not_in`` needs none, ``min``/``max``/``range``/``tolerance`` need every value in bounds,
``equals`` (with a list: value by value), ``matches`` and ``glob`` compare the whole value as
DICOM writes it (``A\\B``). An absent or empty value is *missing*: it satisfies only
``present: false``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pytest_dicomqc.record import Scalar, Value, display, is_empty
from pytest_dicomqc.rules.globs import glob_matches
from pytest_dicomqc.rules.limits import MAX_QUOTED_CHARS, clip, quote
from pytest_dicomqc.rules.model import Operand, RuleValue
from pytest_dicomqc.rules.regex import Regex, RegexError, check_length, compile_regex

OperandT = TypeVar("OperandT", bound=Operand)
"""The operand type of one operator: a value, a tuple of them, a compiled regex (RE2)…"""


class OperandError(ValueError):
    """An operand that does not fit its operator; the message is the problem, the loader adds the place."""


@dataclass(frozen=True)
class Operator(Generic[OperandT]):
    """One rule operator, e.g. ``contains`` with the operand ``ORIGINAL``."""

    name: str
    """The YAML key: ``contains: ORIGINAL``."""
    parse: Callable[[str, Any], OperandT]
    """(name, operand as written) -> the operand a check holds; raises :class:`OperandError`."""
    test: Callable[[OperandT, Value], bool]
    """Whether a value that is not missing satisfies the operand."""
    words: Callable[[OperandT], str]
    """The expected side of a finding, e.g. ``one of [CT, MR]``."""
    companion: str | None = None
    """A second key that completes the operand (``tolerance: 0.05`` with ``value: 0.7``): the
    operand as written is then the pair (companion's value, operator's value)."""
    companion_needed: str = ""
    """What the operator says when its companion is absent."""
    judges_missing: bool = False
    """``present``: decides on a missing (absent or empty) value; every other operator fails it,
    and ``allow_missing`` excuses that failure."""

    def operand(self, written: Any) -> OperandT:
        """The operand as a check holds it, from the YAML value; raises :class:`OperandError`."""
        return self.parse(self.name, written)

    def holds(self, operand: OperandT, value: Value) -> bool:
        if is_empty(value) and not self.judges_missing:
            return False
        return self.test(operand, value)


# --- reading operands -------------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_list(name: str, written: Any) -> tuple[RuleValue, ...]:
    if not isinstance(written, list) or not written or not all(_is_scalar(o) for o in written):
        raise OperandError(f"'{name}' needs a non-empty list of values")
    return tuple(written)


def _single_value(name: str, written: Any) -> RuleValue:
    if not _is_scalar(written):
        raise OperandError(f"'{name}' needs a single value")
    value: RuleValue = written
    return value


def _value_or_list(name: str, written: Any) -> RuleValue | tuple[RuleValue, ...]:
    if isinstance(written, list) and written and all(_is_scalar(o) for o in written):
        return tuple(written)
    if _is_scalar(written):
        value: RuleValue = written
        return value
    raise OperandError(f"'{name}' needs a value or a list of values")


def _pattern_text(name: str, written: Any) -> str:
    if not isinstance(written, str):
        raise OperandError(f"'{name}' needs a path pattern as text, e.g. 'train/**'")
    try:
        check_length(written, "path pattern")
    except RegexError as exc:
        raise OperandError(str(exc)) from None
    return written


def _regex(name: str, written: Any) -> Regex:
    if not isinstance(written, str):
        raise OperandError(f"'{name}' needs a regular expression as text")
    try:
        return compile_regex(written)
    except RegexError as exc:
        raise OperandError(str(exc)) from None


def _bound(name: str, written: Any) -> float:
    if not _is_number(written):
        raise OperandError(f"'{name}' needs a number, not {quote(written)}")
    bound: float = written
    return bound


def _low_high(name: str, written: Any) -> tuple[float, float]:
    if not isinstance(written, list) or len(written) != 2 or not all(_is_number(o) for o in written):
        raise OperandError(f"'{name}' needs two numbers: [low, high]")
    low, high = written
    if low > high:
        raise OperandError(f"'{name}' low {low} is above high {high}")
    return low, high


def _centre_spread(name: str, written: Any) -> tuple[float, float]:
    centre, spread = written
    if not _is_number(centre) or not _is_number(spread) or spread < 0:
        raise OperandError(f"'{name}' needs a number >= 0 and a numeric 'value': value ± tolerance")
    return centre, spread


def _flag(name: str, written: Any) -> bool:
    if not isinstance(written, bool):
        raise OperandError(f"'{name}' needs true or false")
    return written


# --- testing values ---------------------------------------------------------------------------


def _values(value: Value) -> list[Scalar]:
    return value if isinstance(value, list) else [value]


def _same(value: Scalar, operand: object) -> bool:
    if isinstance(operand, bool) or isinstance(value, bool):
        return value == operand
    if isinstance(operand, (int, float)):
        number = _number(value)
        return number is not None and number == operand
    return str(value).strip() == str(operand)


def _number(value: Scalar) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _every_number(value: Value, test: Callable[[float], bool]) -> bool:
    """Every value is a number (DS/IS text is read as one) and passes ``test``."""
    numbers = [_number(v) for v in _values(value)]
    return all(n is not None and test(n) for n in numbers)


def _equals(operand: RuleValue | tuple[RuleValue, ...], value: Value) -> bool:
    if isinstance(operand, tuple):  # value by value: [1, 1] equals DS "1.0\\1.0"
        values = _values(value)
        return len(values) == len(operand) and all(_same(v, o) for v, o in zip(values, operand, strict=True))
    return _same(display(value), operand)


def _in(operand: tuple[RuleValue, ...], value: Value) -> bool:
    return all(any(_same(v, item) for item in operand) for v in _values(value))


def _not_in(operand: tuple[RuleValue, ...], value: Value) -> bool:
    return not any(_same(v, item) for v in _values(value) for item in operand)


def _contains(operand: RuleValue, value: Value) -> bool:
    return any(_same(v, operand) for v in _values(value))


def _not_contains(operand: RuleValue, value: Value) -> bool:
    return not _contains(operand, value)


def _contains_any(operand: tuple[RuleValue, ...], value: Value) -> bool:
    return any(_same(v, item) for v in _values(value) for item in operand)


def _contains_all(operand: tuple[RuleValue, ...], value: Value) -> bool:
    values = _values(value)
    return all(any(_same(v, item) for v in values) for item in operand)


def _matches(operand: Regex, value: Value) -> bool:
    return operand.fullmatch(str(display(value)))


def _glob(operand: str, value: Value) -> bool:
    return glob_matches(operand, str(display(value)))


def _min(operand: float, value: Value) -> bool:
    return _every_number(value, lambda n: n >= operand)


def _max(operand: float, value: Value) -> bool:
    return _every_number(value, lambda n: n <= operand)


def _range(operand: tuple[float, float], value: Value) -> bool:
    low, high = operand
    return _every_number(value, lambda n: low <= n <= high)


def _tolerance(operand: tuple[float, float], value: Value) -> bool:
    centre, spread = operand
    return _every_number(value, lambda n: abs(n - centre) <= spread)


def _present(operand: bool, value: Value) -> bool:
    return (not is_empty(value)) is operand


# --- words ------------------------------------------------------------------------------------


def _quoted(operand: object) -> str:
    """Text in plain quotes (no doubled backslashes, unlike repr); numbers as they are; cut."""
    return f"'{clip(operand)}'" if isinstance(operand, str) else clip(str(operand))


def _shown(operand: object) -> str:
    if isinstance(operand, tuple):
        return "[" + clip(", ".join(str(o) for o in _first_items(operand))) + "]"
    return _quoted(operand)


def _first_items(items: tuple[object, ...]) -> tuple[object, ...]:
    """Enough items for a cut list (each adds a ", "): a finding must not join all of 100,000."""
    return items[:MAX_QUOTED_CHARS]


def _phrase(words: str) -> Callable[[Any], str]:
    """``words`` and then the operand: ``one of [CT, MR]``, ``to contain 'ORIGINAL'``."""
    return lambda operand: f"{words} {_shown(operand)}"


# --- the table --------------------------------------------------------------------------------

EQUALS = Operator("equals", _value_or_list, _equals, _phrase("equal to"))
IN = Operator("in", _value_list, _in, _phrase("one of"))
NOT_IN = Operator("not_in", _value_list, _not_in, _phrase("none of"))
CONTAINS = Operator("contains", _single_value, _contains, _phrase("to contain"))
NOT_CONTAINS = Operator("not_contains", _single_value, _not_contains, _phrase("not to contain"))
CONTAINS_ANY = Operator("contains_any", _value_list, _contains_any, _phrase("to contain one of"))
CONTAINS_ALL = Operator("contains_all", _value_list, _contains_all, _phrase("to contain all of"))
MATCHES = Operator("matches", _regex, _matches, lambda pattern: f"to match {_quoted(pattern.pattern)}")
GLOB = Operator("glob", _pattern_text, _glob, _phrase("to match the pattern"))
MIN = Operator("min", _bound, _min, _phrase(">="))
MAX = Operator("max", _bound, _max, _phrase("<="))
RANGE = Operator("range", _low_high, _range, lambda bounds: f"between {bounds[0]} and {bounds[1]}")
TOLERANCE = Operator(
    "tolerance",
    _centre_spread,
    _tolerance,
    lambda pair: f"within {pair[0]} ± {pair[1]}",
    companion="value",
    companion_needed="needs a 'value' to be within it of",
)
PRESENT = Operator("present", _flag, _present, lambda flag: "present" if flag else "absent", judges_missing=True)

OPERATORS: tuple[Operator[Any], ...] = (
    EQUALS,
    IN,
    NOT_IN,
    CONTAINS,
    NOT_CONTAINS,
    CONTAINS_ANY,
    CONTAINS_ALL,
    MATCHES,
    GLOB,
    MIN,
    MAX,
    RANGE,
    TOLERANCE,
    PRESENT,
)
"""Every operator, in the order the rules file's errors and the README list them."""
OPERATOR_NAMES: tuple[str, ...] = tuple(op.name for op in OPERATORS)
COMPANION_KEYS: tuple[str, ...] = tuple(dict.fromkeys(op.companion for op in OPERATORS if op.companion))
"""Keys that complete an operator rather than being one: ``value``."""
_BY_NAME: dict[str, Operator[Any]] = {op.name: op for op in OPERATORS}


def operator(name: str) -> Operator[Any]:
    """The operator called ``name``; a ValueError for a name the loader would never admit."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}") from None
