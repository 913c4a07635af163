"""Loading a rules file: safe YAML, then a schema check that names file:line:column.

Every problem is a :class:`RulesError`; the pytest layer turns it into a usage error. No rule
is half-loaded: a file either validates as a whole or is rejected before any DICOM file is read.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import keyword_dict, tag_for_keyword

from pytest_dicomqc.extract import is_identifying
from pytest_dicomqc.record import FILE_COLUMNS, FIXED_COLUMNS, PIXEL_FIELDS
from pytest_dicomqc.rules.model import (
    FILE,
    FILE_FIELDS,
    NON_DICOM_POLICIES,
    PIXEL,
    SEVERITIES,
    TAG,
    Check,
    Condition,
    Operand,
    Rule,
    RuleSet,
    Target,
)

OPERATORS = ("equals", "in", "not_in", "contains", "not_contains", "matches", "min", "max", "range", "present")
RULE_KEYS = ("id", "description", "tag", "pixel", "file", "severity", "allow_missing", "when", "message")
TOP_KEYS = ("version", "rules", "columns", "non_dicom")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_HEX_TAG = re.compile(r"(?:0x)?\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?")
_MAX_BYTES = 1_000_000
MESSAGE_FIELDS = ("id", "target", "observed", "expected")
RESERVED_IDS = frozenset(FIXED_COLUMNS + PIXEL_FIELDS + FILE_COLUMNS)


class RulesError(Exception):
    """A rules file that cannot be used; the message starts with ``file:line:column:``."""


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers where each key stands."""

    marks: dict[str, yaml.Mark]
    key_marks: dict[str, yaml.Mark]
    mark: yaml.Mark


class _Sequence(list[Any]):
    """A YAML list that remembers where it and each of its items stand."""

    mark: yaml.Mark
    marks: list[yaml.Mark]


class _Int(int):
    """An integer that keeps its YAML spelling: ``00100010`` is octal to YAML 1.1, a tag to us."""

    text: str


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Mapping:  # type: ignore[override]
        mapping = _Mapping()
        mapping.mark = node.start_mark
        mapping.marks = {}
        mapping.key_marks = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(problem=f"keys must be text, not {key!r}", problem_mark=key_node.start_mark)
            if key in mapping:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.marks[key] = value_node.start_mark
            mapping.key_marks[key] = key_node.start_mark
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> _Sequence:
        sequence = _Sequence(self.construct_object(child, deep=True) for child in node.value)
        sequence.mark = node.start_mark
        sequence.marks = [child.start_mark for child in node.value]
        return sequence

    def construct_yaml_int(self, node: yaml.ScalarNode) -> _Int:
        number = _Int(super().construct_yaml_int(node))
        number.text = str(node.value)
        return number


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
# YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, which turns
# DICOM values such as BurnedInAnnotation "NO" into False.
_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_rules(path: Path) -> RuleSet:
    """Parse and validate the rules file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.strerror or exc}") from None
    if len(data) > _MAX_BYTES:
        raise RulesError(f"{path}: rules file is larger than {_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: rules file is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> RuleSet:
    """Validate rules given as YAML text; ``source`` names the file in errors."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise RulesError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: invalid YAML: {exc}") from None
    return _Schema(source).ruleset(document)


class _Schema:
    """Turns the YAML document into a :class:`RuleSet`, failing at the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, mark: yaml.Mark | None, problem: str) -> RulesError:
        where = f"{self.source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else self.source
        return RulesError(f"{where}: {problem}")

    def ruleset(self, document: Any) -> RuleSet:
        if not isinstance(document, _Mapping):
            raise self.fail(getattr(document, "mark", None), "a rules file is a mapping with 'version' and 'rules'")
        self.known_keys(document, TOP_KEYS, "top-level key")
        if document.get("version") != 1:
            raise self.fail(document.marks.get("version", document.mark), "'version: 1' is required")
        rules_node = document.get("rules")
        if not isinstance(rules_node, _Sequence):
            raise self.fail(document.marks.get("rules", document.mark), "'rules' must be a list of rules")
        rules = tuple(self.rule(node, mark) for node, mark in zip(rules_node, rules_node.marks, strict=True))
        seen: set[str] = set()
        for rule_node, rule in zip(rules_node, rules, strict=True):
            if rule.id in seen:
                raise self.fail(rule_node.marks["id"], f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        non_dicom = document.get("non_dicom", "skip")
        if non_dicom not in NON_DICOM_POLICIES:
            raise self.fail(document.marks["non_dicom"], f"'non_dicom' must be one of {', '.join(NON_DICOM_POLICIES)}")
        columns_node = document.get("columns", _Sequence())
        if not isinstance(columns_node, list):
            raise self.fail(document.marks["columns"], "'columns' must be a list of DICOM keywords or tags")
        columns = tuple(self.tag_target(name, document.marks["columns"]) for name in columns_node)
        return RuleSet(source=self.source, rules=rules, columns=columns, non_dicom=non_dicom)

    def rule(self, node: Any, mark: yaml.Mark) -> Rule:
        if not isinstance(node, _Mapping):
            raise self.fail(mark, "each rule must be a mapping with 'id', a target and an operator")
        self.known_keys(node, RULE_KEYS + OPERATORS, "rule key")
        rule_id = node.get("id")
        if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
            raise self.fail(node.marks.get("id", node.mark), "rule 'id' must be lowercase letters, digits and '-'")
        if rule_id in RESERVED_IDS:
            raise self.fail(node.marks["id"], f"rule id {rule_id!r} is a column of the report; choose another")
        targets = [key for key in (TAG, PIXEL, FILE) if key in node]
        if len(targets) != 1:
            raise self.fail(node.mark, f"rule {rule_id!r} needs exactly one of 'tag', 'pixel', 'file'")
        target = self.target(targets[0], node[targets[0]], node.marks[targets[0]])
        check = self.single_check(node, f"rule {rule_id!r}")
        severity = node.get("severity", "error")
        if severity not in SEVERITIES:
            raise self.fail(node.marks["severity"], f"'severity' must be 'error' or 'warning', not {severity!r}")
        allow_missing = node.get("allow_missing", False)
        if not isinstance(allow_missing, bool):
            raise self.fail(node.marks["allow_missing"], "'allow_missing' must be true or false")
        for key in ("description", "message"):
            if not isinstance(node.get(key, ""), str):
                raise self.fail(node.marks[key], f"'{key}' must be text")
        if "message" in node:
            self.message_template(node["message"], node.marks["message"])
        return Rule(
            id=rule_id,
            target=target,
            check=check,
            severity=severity,
            allow_missing=allow_missing,
            when=self.conditions(node.get("when"), node.marks.get("when")),
            description=node.get("description", ""),
            message=node.get("message", ""),
            line=node.mark.line + 1,
        )

    def message_template(self, template: str, mark: yaml.Mark) -> None:
        try:
            template.format(**dict.fromkeys(MESSAGE_FIELDS, ""))
        except Exception as exc:  # noqa: BLE001 - str.format raises many kinds for a bad template
            known = ", ".join("{" + name + "}" for name in MESSAGE_FIELDS)
            raise self.fail(mark, f"'message' has an unknown or broken placeholder ({exc}); known: {known}") from None

    def conditions(self, node: Any, mark: yaml.Mark | None) -> tuple[Condition, ...]:
        if node is None:
            return ()
        if not isinstance(node, _Mapping):
            raise self.fail(mark, "'when' must be a mapping of tag or pixel field to condition")
        conditions = []
        for name, spec in node.items():
            key_mark = node.key_marks[name]
            target = (
                Target(PIXEL, name)
                if name in PIXEL_FIELDS
                else Target(FILE, name)
                if name in FILE_FIELDS
                else self.tag_target(name, key_mark)
            )
            if isinstance(spec, _Mapping):
                self.known_keys(spec, OPERATORS, "operator")
                check = self.single_check(spec, f"condition on {name!r}")
            elif isinstance(spec, list):
                check = self.check("in", spec, key_mark)
            else:
                check = self.check("equals", spec, key_mark)
            conditions.append(Condition(target, check))
        return tuple(conditions)

    def single_check(self, node: _Mapping, what: str) -> Check:
        operators = [key for key in node if key in OPERATORS]
        if len(operators) != 1:
            found = ", ".join(operators) or "none"
            raise self.fail(node.mark, f"{what} needs exactly one operator ({', '.join(OPERATORS)}); found {found}")
        operator = operators[0]
        return self.check(operator, node[operator], node.marks[operator])

    def check(self, operator: str, operand: Any, mark: yaml.Mark) -> Check:
        value: Operand
        if operator in ("in", "not_in"):
            if not isinstance(operand, list) or not operand or not all(_is_scalar(o) for o in operand):
                raise self.fail(mark, f"'{operator}' needs a non-empty list of values")
            value = tuple(operand)
        elif operator == "equals":
            if isinstance(operand, list) and operand and all(_is_scalar(o) for o in operand):
                value = tuple(operand)
            elif _is_scalar(operand):
                value = operand
            else:
                raise self.fail(mark, "'equals' needs a value or a list of values")
        elif operator in ("contains", "not_contains"):
            if not _is_scalar(operand):
                raise self.fail(mark, f"'{operator}' needs a single value")
            value = operand
        elif operator == "matches":
            if not isinstance(operand, str):
                raise self.fail(mark, "'matches' needs a regular expression as text")
            try:
                value = re.compile(operand)
            except re.error as exc:
                raise self.fail(mark, f"invalid regular expression {operand!r}: {exc}") from None
        elif operator in ("min", "max"):
            if not _is_number(operand):
                raise self.fail(mark, f"'{operator}' needs a number, not {operand!r}")
            value = operand
        elif operator == "range":
            if not isinstance(operand, list) or len(operand) != 2 or not all(_is_number(o) for o in operand):
                raise self.fail(mark, "'range' needs two numbers: [low, high]")
            if operand[0] > operand[1]:
                raise self.fail(mark, f"'range' low {operand[0]} is above high {operand[1]}")
            value = (operand[0], operand[1])
        else:
            if not isinstance(operand, bool):
                raise self.fail(mark, "'present' needs true or false")
            value = operand
        return Check(operator, value)

    def target(self, source: str, name: Any, mark: yaml.Mark) -> Target:
        if source == TAG:
            return self.tag_target(name, mark)
        fields = PIXEL_FIELDS if source == PIXEL else FILE_FIELDS
        if name not in fields:
            raise self.fail(
                mark, f"unknown {source} field {name!r}{_did_you_mean(str(name), fields)}; known: {', '.join(fields)}"
            )
        return Target(source, name)

    def tag_target(self, name: Any, mark: yaml.Mark) -> Target:
        if isinstance(name, _Int):
            name = name.text  # as written: YAML reads 00280010 as an (octal) integer
        if not isinstance(name, str):
            raise self.fail(mark, f"a tag is a DICOM keyword or '(gggg,eeee)', not {name!r}")
        hex_match = _HEX_TAG.fullmatch(name.strip())
        if hex_match:
            group, element = hex_match.groups()
            number = int(group + element, 16)
            return Target(TAG, f"({group.upper()},{element.upper()})", number, is_identifying(number))
        tag = tag_for_keyword(name)
        if tag is None:
            raise self.fail(mark, f"unknown DICOM keyword {name!r}{_did_you_mean(name, keyword_dict)}")
        return Target(TAG, name, tag, is_identifying(tag))

    def known_keys(self, node: _Mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                raise self.fail(node.key_marks[key], f"unknown {what} {key!r}{_did_you_mean(key, allowed)}")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
