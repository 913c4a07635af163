"""Loading a rules file: safe YAML, then a schema check that names file:line:column.

Every problem is a :class:`RulesError`; the pytest layer turns it into a usage error. No rule
is half-loaded: a file either validates as a whole or is rejected before any DICOM file is read.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import keyword_dict, tag_for_keyword

from pytest_dicomqc.columns import FIXED_NAMES
from pytest_dicomqc.extract import is_identifying
from pytest_dicomqc.record import FILE_COLUMNS, ITEM_NAME, PIXEL_FIELDS, SEVERITIES, Severity, is_empty
from pytest_dicomqc.rules.evaluate import excused_when_missing, holds
from pytest_dicomqc.rules.limits import MAX_DEPTH, MAX_EXPANDED_SIZE, MAX_NUMBER_CHARS, MAX_RULES_BYTES, clip, quote
from pytest_dicomqc.rules.model import (
    CONSISTENT,
    COUNT,
    DATASET_CHECK_TYPES,
    DISJOINT,
    FILE,
    FILE_FIELDS,
    NON_DICOM_POLICIES,
    PIXEL,
    SOURCES,
    SPLIT,
    TAG,
    UNIQUE,
    UNIQUE_PIXELS,
    Check,
    Condition,
    DatasetCheck,
    NonDicomPolicy,
    Rule,
    RuleSet,
    Source,
    Target,
    Threshold,
    Waiver,
)
from pytest_dicomqc.rules.operators import (
    COMPANION_KEYS,
    EQUALS,
    GLOB,
    IN,
    OPERATOR_NAMES,
    OperandError,
    Operator,
    operator,
)
from pytest_dicomqc.rules.regex import Regex, RegexError, check_length, compile_regex

_SERIES = Target(TAG, "SeriesInstanceUID", tag_for_keyword("SeriesInstanceUID"))

OPERAND_KEYS = COMPANION_KEYS
"""Keys that complete an operator: ``tolerance: 0.05`` goes with ``value: 0.7``."""
RULE_KEYS = (
    "id",
    "description",
    "tag",
    "pixel",
    "file",
    "severity",
    "allow_missing",
    "when",
    "message",
    "max_failing",
    "examples",
    *OPERAND_KEYS,
)
TOP_KEYS = ("version", "rules", "columns", "non_dicom", "min_dicom_files", "waivers", "dataset")
DATASET_KEYS = (
    "id",
    "description",
    *DATASET_CHECK_TYPES,
    "group_by",
    "split",
    "instance_numbers",
    "slice_spacing",
    "severity",
    "when",
)
_DATASET_OPTIONS = {
    "group_by": (CONSISTENT, COUNT),
    "split": (DISJOINT, COUNT),
    "instance_numbers": (CONSISTENT,),
    "slice_spacing": (CONSISTENT,),
}
WAIVER_KEYS = ("id", "path", "sop_instance_uid", "rules", "reason", "expires")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
# one way to read each space (never "\s*,?\s*"): a tag of 16,000 spaces took seconds, a longer one hours
_HEX_TAG = re.compile(r"(?:0x)?\(?\s*([0-9A-Fa-f]{4})\s*(?:,\s*)?([0-9A-Fa-f]{4})\s*\)?")
MESSAGE_FIELDS = ("id", "target", "observed", "expected")
RESERVED_IDS = frozenset((*FIXED_NAMES, *PIXEL_FIELDS, *FILE_COLUMNS, ITEM_NAME))
"""Report columns, and the item name (``dicomqc::rule::<id>`` must not end like a file's node id)."""


class RulesError(Exception):
    """A rules file that cannot be used; the message starts with ``file:line:column:``."""


class _Refused(yaml.MarkedYAMLError):
    """What our loader refuses while building the document; its message quotes within bounds already."""


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
                raise _Refused(problem=f"keys must be text, not {quote(key)}", problem_mark=key_node.start_mark)
            if key in mapping:
                raise _Refused(problem=f"duplicate key {quote(key)}", problem_mark=key_node.start_mark)
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
        if len(node.value) > MAX_NUMBER_CHARS:  # YAML 1.1's 1:2:3… would take quadratic time, 0x… be unprintable
            raise _Refused(
                problem=f"a number is at most {MAX_NUMBER_CHARS} characters long, not {quote(node.value)}",
                problem_mark=node.start_mark,
            )
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


def load_rules(path: Path, today: dt.date | None = None) -> RuleSet:
    """Parse and validate the rules file at ``path``; ``today`` decides which waivers have expired."""
    return parse_rules(read_text(path, "rules"), str(path), today)


def parse_rules(text: str, source: str, today: dt.date | None = None) -> RuleSet:
    """Validate rules given as YAML text; ``source`` names the file in errors."""
    return _Schema(source, today).ruleset(_parse_yaml(text, source))


def load_waivers(path: Path, ruleset: RuleSet, today: dt.date | None = None) -> RuleSet:
    """``ruleset`` with the waivers of a separate waivers file (``version: 1``, ``waivers: [...]``) added."""
    return parse_waivers(read_text(path, "waivers"), str(path), ruleset, today)


def parse_waivers(text: str, source: str, ruleset: RuleSet, today: dt.date | None = None) -> RuleSet:
    """:func:`load_waivers` of waivers given as YAML text; ``source`` names the file in errors."""
    schema = _Schema(source, today)
    document = _parse_yaml(text, source)
    if not isinstance(document, _Mapping) or document.get("version") != 1 or "waivers" not in document:
        raise schema.fail(
            getattr(document, "mark", None), "a waivers file is a mapping with 'version: 1' and 'waivers'"
        )
    schema.known_keys(document, ("version", "waivers"), "top-level key")
    waivers = schema.waivers(document["waivers"], document.marks["waivers"], ruleset)
    clash = {w.id for w in waivers} & {w.id for w in ruleset.waivers}
    if clash:
        raise schema.fail(
            document.marks["waivers"], f"waiver ids also used in {ruleset.source}: {', '.join(sorted(clash))}"
        )
    return replace(ruleset, waivers=ruleset.waivers + waivers)


def _check_depth(root: yaml.Node, source: str) -> None:
    """Reject absurd nesting before building anything; aliases are visited once (no alias bombs)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            mark = node.start_mark
            raise RulesError(f"{source}:{mark.line + 1}:{mark.column + 1}: nesting is deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            stack += [(child, depth + 1) for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            stack += [(part, depth + 1) for pair in node.value for part in pair]


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Refuse a document that aliases expand beyond :data:`MAX_EXPANDED_SIZE`, before anything
    (an error message, an example, a date) expands it. Each node's size is computed once, so the
    check is linear in the file however far its aliases reach; an alias inside itself is refused."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # whose size waits for their children's: an alias to one is a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_sized = stack.pop()
        if children_sized:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[id(node)] > MAX_EXPANDED_SIZE:
                raise RulesError(
                    f"{_where(source, node)}: with its aliases written out this {_kind(node)} is larger than"
                    f" {MAX_EXPANDED_SIZE:,} (nodes and characters); aliases nested like this are refused"
                )
        elif id(node) in open_nodes:
            raise RulesError(f"{_where(source, node)}: an alias refers to the {_kind(node)} that contains it")
        elif id(node) not in sizes:
            if isinstance(node, yaml.ScalarNode):
                sizes[id(node)] = 1 + len(node.value)
            else:
                open_nodes.add(id(node))
                stack.append((node, True))
                stack += [(child, False) for child in _children(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _where(source: str, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _kind(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "mapping"


def read_text(path: Path, what: str) -> str:
    """A rules or waivers file's text: UTF-8, at most :data:`MAX_RULES_BYTES`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read {what} file: {exc.strerror or exc}") from None
    if len(data) > MAX_RULES_BYTES:
        raise RulesError(f"{path}: {what} file is larger than {MAX_RULES_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: {what} file is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def _parse_yaml(text: str, source: str) -> Any:
    """Safe YAML (no Python tags), at most :data:`MAX_DEPTH` levels deep."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_depth(node, source)
            _check_expanded_size(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise RulesError(f"{source}: nesting is too deep (more than {MAX_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = str(exc.problem or exc.context)  # PyYAML's may quote a whole alias or tag name
        raise RulesError(f"{where}: invalid YAML: {problem if isinstance(exc, _Refused) else clip(problem)}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: invalid YAML: {clip(str(exc))}") from None


class _Schema:
    """Turns the YAML document into a :class:`RuleSet`, failing at the first problem."""

    def __init__(self, source: str, today: dt.date | None) -> None:
        self.source = source
        self.today = today or dt.date.today()

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
                raise self.fail(rule_node.marks["id"], f"duplicate rule id {quote(rule.id)}")
            seen.add(rule.id)
        columns_node = document.get("columns", _Sequence())
        if not isinstance(columns_node, list):
            raise self.fail(document.marks["columns"], "'columns' must be a list of DICOM keywords or tags")
        columns = tuple(self.tag_target(name, document.marks["columns"]) for name in columns_node)
        ruleset = RuleSet(
            source=self.source,
            rules=rules,
            columns=columns,
            non_dicom=self.non_dicom(document.get("non_dicom", "skip"), document.marks.get("non_dicom")),
            min_dicom_files=self.min_dicom_files(
                document.get("min_dicom_files", 1), document.marks.get("min_dicom_files")
            ),
        )
        if "dataset" in document:
            ruleset = replace(ruleset, dataset=self.dataset(document["dataset"], document.marks["dataset"], rules))
        if "waivers" in document:
            return replace(ruleset, waivers=self.waivers(document["waivers"], document.marks["waivers"], ruleset))
        return ruleset

    def min_dicom_files(self, node: Any, mark: yaml.Mark | None) -> int:
        if not isinstance(node, int) or isinstance(node, bool) or node < 0:
            raise self.fail(mark, f"'min_dicom_files' must be a whole number of files >= 0, not {quote(_plain(node))}")
        return int(node)

    def severity(self, node: _Mapping) -> Severity:
        written = node.get("severity", "error")
        for severity in SEVERITIES:
            if written == severity:
                return severity
        choices = " or ".join(f"'{severity}'" for severity in SEVERITIES)
        raise self.fail(node.marks["severity"], f"'severity' must be {choices}, not {quote(written)}")

    def dataset(self, node: Any, mark: yaml.Mark, rules: tuple[Rule, ...]) -> tuple[DatasetCheck, ...]:
        if not isinstance(node, _Sequence):
            raise self.fail(mark, "'dataset' must be a list of dataset checks")
        checks = tuple(self.dataset_check(item, item_mark) for item, item_mark in zip(node, node.marks, strict=True))
        seen = {rule.id for rule in rules}
        for item, check in zip(node, checks, strict=True):
            if check.id in seen:
                raise self.fail(
                    item.marks["id"], f"duplicate id {quote(check.id)} (rules and dataset checks share ids)"
                )
            seen.add(check.id)
        return checks

    def dataset_check(self, node: Any, mark: yaml.Mark) -> DatasetCheck:
        kinds = ", ".join(DATASET_CHECK_TYPES)
        if not isinstance(node, _Mapping):
            raise self.fail(mark, f"each dataset check is a mapping with 'id' and one of {kinds}")
        self.known_keys(node, DATASET_KEYS, "dataset check key")
        check_id = node.get("id")
        if not isinstance(check_id, str) or not _ID.fullmatch(check_id):
            raise self.fail(node.marks.get("id", node.mark), "check 'id' must be lowercase letters, digits and '-'")
        if check_id == ITEM_NAME:  # a check is no column: its results are dicomqc::dataset::<id>
            raise self.fail(node.marks["id"], f"check id {quote(check_id)} is the plugin's item name; choose another")
        types = [key for key in DATASET_CHECK_TYPES if key in node]
        if len(types) != 1:
            raise self.fail(node.mark, f"dataset check {quote(check_id)} needs exactly one of {kinds}")
        kind = types[0]
        for option, allowed in _DATASET_OPTIONS.items():
            if option in node and kind not in allowed:
                raise self.fail(node.key_marks[option], f"'{option}' goes with {' or '.join(allowed)}, not {kind}")
        severity = self.severity(node)
        if not isinstance(node.get("description", ""), str):
            raise self.fail(node.marks["description"], "'description' must be text")
        check = DatasetCheck(
            id=check_id,
            type=kind,
            severity=severity,
            when=self.conditions(node.get("when"), node.marks.get("when")),
            description=node.get("description", ""),
        )
        value, value_mark = node[kind], node.marks[kind]
        if kind in (UNIQUE, DISJOINT):
            check = replace(check, targets=(self.tag_target(value, value_mark),))
        elif kind == UNIQUE_PIXELS:
            if value is not True:
                raise self.fail(value_mark, "'unique_pixels' takes true")
        elif kind == CONSISTENT:
            if not isinstance(value, list) or not value:
                raise self.fail(value_mark, "'consistent' needs a list of tags or pixel fields, e.g. [Rows, dtype]")
            check = replace(check, targets=tuple(self.field_target(name, value_mark) for name in value))
        else:
            minimum, maximum = self.count_bounds(value, value_mark)
            check = replace(check, minimum=minimum, maximum=maximum)
        if "group_by" in node:
            group_by = node["group_by"]
            if group_by == SPLIT and kind == COUNT:
                check = replace(check, group_by=None)
            else:
                check = replace(check, group_by=self.tag_target(group_by, node.marks["group_by"]))
        elif kind == CONSISTENT:
            check = replace(check, group_by=_SERIES)
        if "split" in node:
            if check.group_by is not None:
                raise self.fail(node.key_marks["split"], "'split' goes with group_by: split, not with a tag")
            check = replace(check, split=self.split(node["split"], node.marks["split"]))
        if "instance_numbers" in node:
            if node["instance_numbers"] != "unique":
                raise self.fail(node.marks["instance_numbers"], "'instance_numbers' takes 'unique'")
            check = replace(check, instance_numbers=True)
        if "slice_spacing" in node:
            check = replace(check, slice_spacing=self.tolerance(node["slice_spacing"], node.marks["slice_spacing"]))
        return check

    def field_target(self, name: Any, mark: yaml.Mark) -> Target:
        """A tag keyword, or a pixel summary field (``dtype``, ``rows``…) as in ``when``."""
        if isinstance(name, str) and name.startswith("pixel."):
            return self.target(PIXEL, name.removeprefix("pixel."), mark)
        if name in PIXEL_FIELDS:
            return Target(PIXEL, name)
        return self.tag_target(name, mark)

    def count_bounds(self, node: Any, mark: yaml.Mark) -> tuple[int | None, int | None]:
        if not isinstance(node, _Mapping) or not node or set(node) - {"min", "max"}:
            raise self.fail(mark, "'count' is a mapping with 'min' and/or 'max' files per group")
        for key, bound in node.items():
            if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
                raise self.fail(node.marks[key], f"'{key}' must be a whole number of files >= 0")
        if "min" in node and "max" in node and node["min"] > node["max"]:
            raise self.fail(mark, f"'count' min {node['min']} is above max {node['max']}")
        return node.get("min"), node.get("max")

    def split(self, node: Any, mark: yaml.Mark) -> Regex:
        if not isinstance(node, str) or not node:
            raise self.fail(
                mark, "'split' is a regular expression matched at the start of the path, e.g. '(train|test)/'"
            )
        try:
            return compile_regex(node, groups=True)
        except RegexError as exc:
            raise self.fail(mark, str(exc)) from None

    def glob(self, pattern: str, mark: yaml.Mark) -> str:
        try:
            check_length(pattern, "path pattern")
        except RegexError as exc:
            raise self.fail(mark, str(exc)) from None
        return pattern

    def tolerance(self, node: Any, mark: yaml.Mark) -> float:
        spread: Any = node.get("tolerance") if isinstance(node, _Mapping) and set(node) == {"tolerance"} else None
        if not _is_number(spread) or not math.isfinite(spread) or spread < 0:
            raise self.fail(mark, "'slice_spacing' is a mapping with a 'tolerance' in mm >= 0, e.g. {tolerance: 0.01}")
        return float(spread)

    def non_dicom(self, node: Any, mark: yaml.Mark | None) -> NonDicomPolicy:
        policies = ", ".join(NON_DICOM_POLICIES)
        if isinstance(node, str):
            if node not in NON_DICOM_POLICIES:
                raise self.fail(mark, f"'non_dicom' must be one of {policies}, or a mapping with 'default'")
            return NonDicomPolicy(default=node)
        if not isinstance(node, _Mapping):
            raise self.fail(mark, f"'non_dicom' must be one of {policies}, or a mapping with 'default'")
        self.known_keys(node, ("default", *NON_DICOM_POLICIES), "non_dicom key")
        default = node.get("default", "skip")
        if default not in NON_DICOM_POLICIES:
            raise self.fail(node.marks.get("default"), f"'default' must be one of {policies}")
        exceptions = []
        for policy in NON_DICOM_POLICIES:
            globs = node.get(policy, [])
            if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
                raise self.fail(node.marks[policy], f"'{policy}' must be a list of path patterns such as '**/*.json'")
            exceptions += [(self.glob(glob, node.marks[policy]), policy) for glob in globs]
        return NonDicomPolicy(default=default, exceptions=tuple(exceptions))

    def waivers(self, node: Any, mark: yaml.Mark, ruleset: RuleSet) -> tuple[Waiver, ...]:
        if not isinstance(node, _Sequence):
            raise self.fail(mark, "'waivers' must be a list of waivers")
        waivers = tuple(
            self.waiver(item, item_mark, index, ruleset)
            for index, (item, item_mark) in enumerate(zip(node, node.marks, strict=True), start=1)
        )
        seen: set[str] = set()
        for item, waiver in zip(node, waivers, strict=True):
            if waiver.id in seen:
                raise self.fail(item.marks["id"], f"duplicate waiver id {quote(waiver.id)}")
            seen.add(waiver.id)
        return waivers

    def waiver(self, node: Any, mark: yaml.Mark, index: int, ruleset: RuleSet) -> Waiver:
        if not isinstance(node, _Mapping):
            raise self.fail(mark, "each waiver is a mapping with 'path' or 'sop_instance_uid', 'rules' and 'reason'")
        self.known_keys(node, WAIVER_KEYS, "waiver key")
        waiver_id = node.get("id", f"W{index}")
        if not isinstance(waiver_id, str) or not _ID.fullmatch(waiver_id.lower()):
            raise self.fail(node.marks.get("id", mark), "waiver 'id' must be letters, digits and '-'")
        matchers = [key for key in ("path", "sop_instance_uid") if key in node]
        if len(matchers) != 1:
            raise self.fail(
                mark, f"waiver {quote(waiver_id)} needs exactly one of 'path' (a glob) or 'sop_instance_uid'"
            )
        matcher = node[matchers[0]]
        if not isinstance(matcher, (str, _Int)):
            raise self.fail(node.marks[matchers[0]], f"'{matchers[0]}' must be text")
        if matchers[0] == "path":
            self.glob(str(matcher), node.marks["path"])
        reason = node.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise self.fail(
                node.marks.get("reason", mark), f"waiver {quote(waiver_id)} needs a 'reason': why is it accepted?"
            )
        rules = node.get("rules")
        if rules == "*":
            rules = ["*"]
        if not isinstance(rules, list) or not rules or not all(isinstance(r, str) for r in rules):
            raise self.fail(node.marks.get("rules", mark), "'rules' must be a list of rule ids, or '*' for every rule")
        known = [rule.id for rule in ruleset.rules] + [check.id for check in ruleset.dataset]
        for rule_id in rules:
            if rule_id != "*" and rule_id not in known:
                raise self.fail(
                    node.marks["rules"],
                    f"waiver {quote(waiver_id)}: unknown rule id {quote(rule_id)}{_did_you_mean(rule_id, known)}",
                )
        expires = node.get("expires")
        if expires is not None:
            expires = self.date(expires, node.marks["expires"])
        return Waiver(
            id=waiver_id,
            reason=reason.strip(),
            rules=tuple(rules),
            path=str(matcher) if matchers[0] == "path" else None,
            sop_instance_uid=str(getattr(matcher, "text", matcher)) if matchers[0] == "sop_instance_uid" else None,
            expires=expires,
            expired=expires is not None and expires <= self.today.isoformat(),
            source=self.source,
            line=node.mark.line + 1,
        )

    def date(self, node: Any, mark: yaml.Mark) -> str:
        if isinstance(node, dt.date) and not isinstance(node, dt.datetime):
            return node.isoformat()
        try:
            return dt.date.fromisoformat(str(node)).isoformat()
        except ValueError:
            raise self.fail(mark, f"'expires' must be a date YYYY-MM-DD, not {quote(str(node))}") from None

    def rule(self, node: Any, mark: yaml.Mark) -> Rule:
        if not isinstance(node, _Mapping):
            raise self.fail(mark, "each rule must be a mapping with 'id', a target and an operator")
        self.known_keys(node, RULE_KEYS + OPERATOR_NAMES, "rule key")
        rule_id = node.get("id")
        if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
            raise self.fail(node.marks.get("id", node.mark), "rule 'id' must be lowercase letters, digits and '-'")
        if rule_id in RESERVED_IDS:
            raise self.fail(node.marks["id"], f"rule id {quote(rule_id)} is a column of the report; choose another")
        targets = [key for key in SOURCES if key in node]
        if len(targets) != 1:
            sources = ", ".join(f"'{source}'" for source in SOURCES)
            raise self.fail(node.mark, f"rule {quote(rule_id)} needs exactly one of {sources}")
        target = self.target(targets[0], node[targets[0]], node.marks[targets[0]])
        check = self.single_check(node, f"rule {quote(rule_id)}")
        severity = self.severity(node)
        allow_missing = node.get("allow_missing", False)
        if not isinstance(allow_missing, bool):
            raise self.fail(node.marks["allow_missing"], "'allow_missing' must be true or false")
        for key in ("description", "message"):
            if not isinstance(node.get(key, ""), str):
                raise self.fail(node.marks[key], f"'{key}' must be text")
        if "message" in node:
            self.message_template(node["message"], node.marks["message"])
        threshold = None
        if "max_failing" in node:
            if severity != "error":
                raise self.fail(node.marks["max_failing"], "'max_failing' goes with severity error only")
            threshold = self.threshold(node["max_failing"], node.marks["max_failing"])
        rule = Rule(
            id=rule_id,
            target=target,
            check=check,
            severity=severity,
            allow_missing=allow_missing,
            when=self.conditions(node.get("when"), node.marks.get("when")),
            description=node.get("description", ""),
            message=node.get("message", ""),
            max_failing=threshold,
            line=node.mark.line + 1,
        )
        if "examples" in node:
            self.examples(rule, node["examples"], node.marks["examples"])
        return rule

    def threshold(self, node: Any, mark: yaml.Mark) -> Threshold:
        if isinstance(node, int) and not isinstance(node, bool) and node >= 0:
            return Threshold(count=int(node), text=str(int(node)))
        match = _PERCENT.fullmatch(node.strip()) if isinstance(node, str) else None
        if match is None or float(match.group(1)) > 100:
            raise self.fail(mark, f"'max_failing' is a count of files or a percentage such as '2%', not {quote(node)}")
        return Threshold(percent=match.group(1), text=f"{match.group(1)}%")

    def examples(self, rule: Rule, node: Any, mark: yaml.Mark) -> None:
        """Run the rule's self-tests: literal values that must pass it, and values it must catch.

        They test the value check as a run would apply it (``allow_missing`` included); ``when``
        needs a whole file, so examples assume the rule applies.
        """
        if not isinstance(node, _Mapping) or not node or set(node) - {"pass", "fail"}:
            raise self.fail(mark, "'examples' is a mapping with 'pass' and/or 'fail' lists of values")
        for outcome, values in node.items():
            if not isinstance(values, _Sequence):
                raise self.fail(node.marks[outcome], f"'examples: {outcome}' must be a list of values")
            for value, value_mark in zip(values, values.marks, strict=True):
                literal = [_plain(v) for v in value] if isinstance(value, list) else _plain(value)
                missing_allowed = is_empty(literal) and excused_when_missing(rule)
                if (missing_allowed or holds(rule.check, literal)) != (outcome == "pass"):
                    verb = "fails" if outcome == "pass" else "passes"
                    raise self.fail(
                        value_mark,
                        f"rule {quote(rule.id)}: example {quote(value)} {verb} the rule (listed under {outcome})",
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
                self.known_keys(spec, OPERATOR_NAMES + OPERAND_KEYS, "operator")
                check = self.single_check(spec, f"condition on {quote(name)}")
            elif isinstance(spec, list):
                check = self.check(IN, spec, key_mark)
            elif name == "path":
                check = self.check(GLOB, spec, key_mark)
            else:
                check = self.check(EQUALS, spec, key_mark)
            conditions.append(Condition(target, check))
        return tuple(conditions)

    def single_check(self, node: _Mapping, what: str) -> Check:
        operators = [key for key in node if key in OPERATOR_NAMES]
        if len(operators) != 1:
            found = ", ".join(operators) or "none"
            raise self.fail(
                node.mark, f"{what} needs exactly one operator ({', '.join(OPERATOR_NAMES)}); found {found}"
            )
        op = operator(operators[0])
        for key in OPERAND_KEYS:
            if key in node and key != op.companion:
                takers = " or ".join(f"'{o}'" for o in OPERATOR_NAMES if operator(o).companion == key)
                raise self.fail(node.key_marks[key], f"{what}: '{key}' goes only with {takers}")
        if op.companion is None:
            return self.check(op, node[op.name], node.marks[op.name])
        if op.companion not in node:
            raise self.fail(node.marks[op.name], f"{what}: '{op.name}' {op.companion_needed}")
        return self.check(op, (node[op.companion], node[op.name]), node.marks[op.name])

    def check(self, op: Operator[Any], written: Any, mark: yaml.Mark) -> Check:
        """The operand read and validated by its operator (see :mod:`pytest_dicomqc.rules.operators`)."""
        try:
            return Check(op.name, op.operand(written))
        except OperandError as exc:
            raise self.fail(mark, str(exc)) from None

    def target(self, source: Source, name: Any, mark: yaml.Mark) -> Target:
        if source == TAG:
            return self.tag_target(name, mark)
        fields = PIXEL_FIELDS if source == PIXEL else FILE_FIELDS
        if name not in fields:
            raise self.fail(
                mark,
                f"unknown {source} field {quote(name)}{_did_you_mean(str(name), fields)}; known: {', '.join(fields)}",
            )
        return Target(source, name)

    def tag_target(self, name: Any, mark: yaml.Mark) -> Target:
        if isinstance(name, _Int):
            name = name.text  # as written: YAML reads 00280010 as an (octal) integer
        if not isinstance(name, str) or not name.strip():
            raise self.fail(mark, f"a tag is a DICOM keyword or '(gggg,eeee)', not {quote(name)}")
        hex_match = _HEX_TAG.fullmatch(name.strip())
        if hex_match:
            group, element = hex_match.groups()
            number = int(group + element, 16)
            return Target(TAG, f"({group.upper()},{element.upper()})", number, is_identifying(number))
        tag = tag_for_keyword(name)
        if tag is None:
            raise self.fail(mark, f"unknown DICOM keyword {quote(name)}{_did_you_mean(name, keyword_dict)}")
        return Target(TAG, name, tag, is_identifying(tag))

    def known_keys(self, node: _Mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                raise self.fail(node.key_marks[key], f"unknown {what} {quote(key)}{_did_you_mean(key, allowed)}")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {quote(close[0])}?)" if close else ""


def _plain(value: Any) -> Any:
    """A YAML scalar as a plain Python value (our integers keep their spelling in a subclass)."""
    return int(value) if isinstance(value, _Int) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
