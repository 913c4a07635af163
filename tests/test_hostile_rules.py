"""A rules file cannot hang the gate or exhaust the machine: every case ends in bounded time and memory.

Each case runs pytest in a subprocess with a timeout, so a guard that is taken away shows as a
failure (the timeout, a memory error, an INTERNALERROR) instead of hanging the suite. A rules
problem is one ``ERROR: file:line:col: ...`` line and exit code 4; a pattern that would make a
backtracking engine run for hours judges the file it is given, and the run ends 0 or 1.
"""

from __future__ import annotations

import resource

import pytest

from pytest_dicomqc.rules.limits import MAX_EXPANDED_SIZE, MAX_NUMBER_CHARS, MAX_PATTERN_CHARS
from tests.helpers import write_dicom

TIMEOUT = 60
"""Seconds, for a noisy 2-core machine: a case takes 2 to 25 s there (most of it PyYAML reading a
1 MB file); with its guard removed, hours or gigabytes."""
MAX_LINE = 500
"""No line of the output may be longer: messages quote a bounded prefix of patterns and values."""
MAX_CHILD_RSS_KB = 1_500_000
"""The peak memory of any pytest this test process ran (Linux reports kilobytes)."""
CATASTROPHIC = "(a+)+$"
"""Backtracking tries 2**40 ways to split forty a's before giving up on the '!'."""
LONG_A = "a" * 40 + "!"


def run_pytest(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[str]]:
    """pytest on ``data`` with ``rules.yaml``; the result and its output lines, checked for bounds."""
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-rules=rules.yaml", *args, timeout=TIMEOUT
    )
    lines = result.outlines + result.errlines
    assert max(map(len, lines)) <= MAX_LINE, max(lines, key=len)[:MAX_LINE]
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < MAX_CHILD_RSS_KB
    return result, lines


def rules_error(pytester: pytest.Pytester, rules: str, *args: str) -> str:
    """The one ERROR line of a run on ``rules``, which must end in exit code 4."""
    (pytester.path / "rules.yaml").write_text(rules)
    write_dicom(pytester.path / "data" / "a.dcm")
    result, lines = run_pytest(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in lines if line.startswith("ERROR:")]
    assert len(errors) == 1, lines
    return errors[0]


def one_rule(body: str) -> str:
    """A rules file with one rule; ``body`` starts on line 4, indented under the rule."""
    return "version: 1\nrules:\n  - id: r\n" + "".join(f"    {line}\n" for line in body.splitlines())


def where(pytester: pytest.Pytester, line: int, column: int, name: str = "rules.yaml") -> str:
    return f"ERROR: {pytester.path / name}:{line}:{column}: "


@pytest.mark.parametrize("mode", [(), ("-n", "2")], ids=["plain", "xdist"])
@pytest.mark.parametrize(("pattern", "exit_code"), [(CATASTROPHIC, 1), ("(a+)+!", 0)], ids=["fails", "passes"])
def test_a_catastrophic_pattern_judges_the_value_in_linear_time(
    pytester: pytest.Pytester, mode: tuple[str, ...], pattern: str, exit_code: int
) -> None:
    (pytester.path / "rules.yaml").write_text(one_rule(f"tag: StudyDescription\nmatches: '{pattern}'"))
    write_dicom(pytester.path / "data" / "a.dcm", StudyDescription=LONG_A)
    result, _ = run_pytest(pytester, *mode)
    assert result.ret == exit_code
    if exit_code:
        result.stdout.fnmatch_lines([f"*r: StudyDescription = {LONG_A}, expected to match '{pattern}'*"])


def test_a_catastrophic_pattern_in_examples_is_judged_while_the_rules_load(pytester: pytest.Pytester) -> None:
    rules = one_rule(f"tag: StudyDescription\nmatches: '{CATASTROPHIC}'\nexamples: {{pass: ['{LONG_A}']}}")
    error = rules_error(pytester, rules)
    expected = f"rule 'r': example '{LONG_A}' fails the rule (listed under pass)"
    assert error == where(pytester, 6, 23) + expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(a)\1", r"backreferences (\1) are not supported (RE2 syntax, linear time)"),
        ("a(?=b)", "look-ahead (?=…) is not supported (RE2 syntax, linear time)"),
        ("(?<!a)b", "negative look-behind (?<!…) is not supported (RE2 syntax, linear time)"),
        ("a++", "possessive quantifiers (++) are not supported (RE2 syntax, linear time)"),
    ],
    ids=["backreference", "look-ahead", "look-behind", "possessive"],
)
def test_a_construct_re2_lacks_is_named(pytester: pytest.Pytester, pattern: str, problem: str) -> None:
    error = rules_error(pytester, one_rule(f"tag: StudyDescription\nmatches: '{pattern}'"))
    assert error == where(pytester, 5, 14) + f"invalid regular expression {pattern!r}: {problem}"


def test_a_split_pattern_is_re2_too(pytester: pytest.Pytester) -> None:
    rules = "version: 1\nrules: []\ndataset:\n  - id: c\n    disjoint: StudyID\n    split: '(train|test)(?=/)'\n"
    error = rules_error(pytester, rules)
    problem = "look-ahead (?=…) is not supported (RE2 syntax, linear time)"
    assert error == where(pytester, 6, 12) + f"invalid regular expression '(train|test)(?=/)': {problem}"


@pytest.mark.parametrize("key", ["matches", "split"])
def test_a_huge_pattern_is_refused_and_quoted_in_part(pytester: pytest.Pytester, key: str) -> None:
    pattern = "(a|b)" * 180_000  # 900 KB: Python's re took 11 s to compile it, and quoted it whole
    if key == "matches":
        rules, place = one_rule(f"tag: StudyDescription\nmatches: '{pattern}'"), (5, 14)
    else:
        rules, place = (
            f"version: 1\nrules: []\ndataset:\n  - id: c\n    disjoint: StudyID\n    split: '{pattern}'\n",
            (6, 12),
        )
    error = rules_error(pytester, rules)
    quoted = "'" + pattern[:99] + "…'"
    assert error == where(pytester, *place) + (
        f"regular expression {quoted} is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS}"
    )


def test_a_path_pattern_is_matched_in_linear_time(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text(one_rule(f"file: path\nglob: '{'*a' * 15}*b'"))
    write_dicom(pytester.path / "data" / ("a" * 200 + ".dcm"))  # backtracking: 200 choose 15 ways to fail
    result, _ = run_pytest(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*r: file.path = {'a' * 99}…, expected to match the pattern '{'*a' * 15}*b'"])


def test_a_huge_path_pattern_is_refused(pytester: pytest.Pytester) -> None:
    glob = "*a" * 5_000  # "*a*a*a…" backtracks polynomially in a path's length
    error = rules_error(pytester, one_rule(f"file: path\nglob: '{glob}'"))
    assert error == where(pytester, 5, 11) + (
        f"path pattern '{glob[:99]}…' is {len(glob)} characters long; at most {MAX_PATTERN_CHARS}"
    )


def billion_laughs(width: int) -> str:
    """A flow list of nine lists, one a line below the key, each ``width`` aliases of the one
    before: ``width**9`` strings when written out."""
    levels = ["&a0 [" + ", ".join(["xx"] * width) + "]"]
    levels += [f"&a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]" for level in range(1, 9)]
    return "[\n" + ",\n".join(f"      {level}" for level in levels) + "]"


FIRST_TOO_LARGE = {10: 6, 21_000: 1}
"""Width -> the first level whose list, written out, is above the limit. 10: a few hundred bytes
that expand to 10**9 strings, level 6 holds 31,111,111 (nodes and characters); 21,000: a file
just under the 1 MB limit, level 1 holds 21,000 * 63,001."""
BOMB_PLACES = {
    "examples": one_rule("tag: Modality\nequals: CT\nexamples:\n  fail: BOMB"),  # run as the rules load
    "message": one_rule("tag: Modality\nequals: CT\nseverity: BOMB"),  # quoted as the wrong value
    "expires": one_rule("tag: Modality\nequals: CT")  # a date is read from its text
    + "waivers:\n  - path: '*'\n    rules: [r]\n    reason: x\n    expires: BOMB\n",
}
TOO_LARGE = (
    f"with its aliases written out this list is larger than {MAX_EXPANDED_SIZE:,} (nodes and characters);"
    " aliases nested like this are refused"
)


@pytest.mark.parametrize(
    ("place", "width"),
    [(place, 10) for place in BOMB_PLACES] + [("examples", 21_000)],  # one file near 1 MB: 6 s of YAML parsing
)
def test_an_alias_bomb_is_refused_before_it_expands(pytester: pytest.Pytester, width: int, place: str) -> None:
    rules = BOMB_PLACES[place].replace("BOMB", billion_laughs(width))
    assert len(rules.encode()) < 1_000_000
    bomb_line = 1 + next(n for n, line in enumerate(BOMB_PLACES[place].splitlines()) if "BOMB" in line)
    error = rules_error(pytester, rules)
    assert error == where(pytester, bomb_line + 1 + FIRST_TOO_LARGE[width], 7) + TOO_LARGE


def test_an_alias_bomb_in_a_waivers_file_is_refused(pytester: pytest.Pytester) -> None:
    (pytester.path / "waivers.yaml").write_text(
        f"version: 1\nwaivers:\n  - path: '*'\n    rules: [r]\n    reason: x\n    expires: {billion_laughs(10)}\n"
    )
    error = rules_error(pytester, one_rule("tag: Modality\nequals: CT"), "--dicom-waivers=waivers.yaml")
    assert error == where(pytester, 6 + 1 + FIRST_TOO_LARGE[10], 7, "waivers.yaml") + TOO_LARGE


def test_an_alias_inside_itself_is_refused(pytester: pytest.Pytester) -> None:
    error = rules_error(pytester, one_rule("tag: Modality\nequals: CT\nexamples: {fail: &loop [*loop]}"))
    assert error == where(pytester, 6, 22) + "an alias refers to the list that contains it"


def test_a_tag_of_spaces_is_read_in_linear_time(pytester: pytest.Pytester) -> None:
    tag = "0010" + " " * 900_000 + "x"  # "\s*,?\s*" in the tag pattern tried every split of the spaces
    error = rules_error(pytester, one_rule(f"tag: '{tag}'\npresent: true"))
    assert error == where(pytester, 4, 10) + f"unknown DICOM keyword '{tag[:99]}…'"


@pytest.mark.parametrize("number", ["1" * 5_000, "1" + ":1" * 300_000], ids=["digits", "sexagesimal"])
def test_a_huge_number_is_refused(pytester: pytest.Pytester, number: str) -> None:
    error = rules_error(pytester, one_rule(f"tag: Rows\nequals: {number}"))
    assert error == where(pytester, 5, 13) + (
        f"invalid YAML: a number is at most {MAX_NUMBER_CHARS} characters long, not '{number[:99]}…'"
    )


def test_a_long_value_is_quoted_in_part(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text(one_rule("tag: ImageComments\nequals: CT"))
    write_dicom(pytester.path / "data" / "a.dcm", ImageComments="x" * 10_000)
    result, _ = run_pytest(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"r: ImageComments = {'x' * 99}…, expected equal to 'CT'"])
