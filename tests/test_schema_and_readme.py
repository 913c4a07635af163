"""The packaged JSON Schema and the README's rules examples agree with the loader."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import pytest_dicomqc
from pytest_dicomqc.rules.load import RULE_KEYS, TOP_KEYS, RulesError, parse_rules
from pytest_dicomqc.rules.operators import COMPANION_KEYS, OPERATOR_NAMES

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((Path(pytest_dicomqc.__file__).parent / "rules.schema.json").read_text())
README_BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
RULES_BLOCKS = [block for block in README_BLOCKS if block.lstrip().startswith("version: 1")]


def as_json(document: Any) -> Any:
    """YAML dates as the text they were written as, the way an editor's YAML server sees them."""
    if isinstance(document, dict):
        return {key: as_json(value) for key, value in document.items()}
    if isinstance(document, list):
        return [as_json(value) for value in document]
    return document.isoformat() if isinstance(document, dt.date) else document


def validate(text: str) -> None:
    jsonschema.validate(as_json(yaml.safe_load(text)), SCHEMA)


def test_default_rules_file_is_valid() -> None:
    validate((ROOT / "rules.yaml").read_text())


def test_readme_has_rules_examples() -> None:
    assert len(RULES_BLOCKS) >= 3


@pytest.mark.parametrize("block", RULES_BLOCKS, ids=lambda block: block.splitlines()[1][:40])
def test_readme_rules_examples_load_and_match_the_schema(block: str) -> None:
    parse_rules(block, "README.md")
    validate(block)


@pytest.mark.parametrize(
    "mistake",
    ["    contians: ORIGINAL\n", "    severity: fatal\n", "    pixel: colour\n", "    max_failing: lots\n"],
)
def test_schema_and_loader_both_reject(mistake: str) -> None:
    text = "version: 1\nrules:\n  - id: r\n    tag: ImageType\n" + mistake
    if "pixel" in mistake:
        text = text.replace("    tag: ImageType\n", "")
    if "contians" not in mistake:
        text += "    contains: ORIGINAL\n"
    with pytest.raises(jsonschema.ValidationError):
        validate(text)
    with pytest.raises(RulesError):
        parse_rules(text, "rules.yaml")


@pytest.mark.parametrize(
    "check",
    [
        "  - id: c\n",  # no check type
        "  - id: c\n    unique: SOPInstanceUID\n    unique_pixels: true\n",  # two types
        "  - id: c\n    unique_pixels: false\n",
        "  - id: c\n    count: {min: -1}\n",
        "  - id: c\n    consistent: [Rows]\n    slice_spacing: {tolerance: -1}\n",
        "  - id: c\n    consistent: [Rows]\n    instance_numbers: all\n",
        "  - id: C\n    unique: SOPInstanceUID\n",
        "  - id: c\n    unique: SOPInstanceUID\n    group-by: x\n",
    ],
)
def test_schema_and_loader_both_reject_dataset_checks(check: str) -> None:
    text = "version: 1\nrules: []\ndataset:\n" + check
    with pytest.raises(jsonschema.ValidationError):
        validate(text)
    with pytest.raises(RulesError):
        parse_rules(text, "rules.yaml")


def when_operator_properties() -> dict[str, Any]:
    """The schema of a ``when:`` condition written as a mapping: ``{matches: ...}``."""
    (mapping,) = [b for b in SCHEMA["$defs"]["when"]["additionalProperties"]["anyOf"] if b.get("type") == "object"]
    return dict(mapping["properties"])


@pytest.mark.parametrize(
    ("where", "keys", "others"),
    [
        ("rule", lambda: SCHEMA["$defs"]["rule"]["properties"], RULE_KEYS),
        ("when", when_operator_properties, COMPANION_KEYS),
    ],
    ids=["rule", "when"],
)
def test_schema_operators_agree_with_the_operator_table(where: str, keys: Any, others: tuple[str, ...]) -> None:
    """Both ways: an operator only in the table, or only in the schema, fails."""
    in_schema = set(keys()) - set(others)
    assert sorted(in_schema - set(OPERATOR_NAMES)) == [], f"in the schema's {where}, not in the operator table"
    assert sorted(set(OPERATOR_NAMES) - in_schema) == [], f"in the operator table, not in the schema's {where}"
    assert set(others) <= set(keys()), f"keys the loader takes missing from the schema's {where}"


def test_schema_describes_an_operator_alike_in_rules_and_conditions() -> None:
    rule = SCHEMA["$defs"]["rule"]["properties"]
    assert {key: rule[key] for key in (*OPERATOR_NAMES, *COMPANION_KEYS)} == when_operator_properties()


def test_schema_top_level_keys_are_the_loaders() -> None:
    assert set(SCHEMA["properties"]) == set(TOP_KEYS)


@pytest.mark.parametrize(
    ("written", "valid"), [("0", True), ("250", True), ("-1", False), ("true", False), ("2.5", False), ('"3"', False)]
)
def test_schema_and_loader_agree_on_min_dicom_files(written: str, valid: bool) -> None:
    text = f"version: 1\nmin_dicom_files: {written}\nrules: []\n"
    if valid:
        validate(text)
        assert parse_rules(text, "rules.yaml").min_dicom_files == int(written)
        return
    with pytest.raises(jsonschema.ValidationError):
        validate(text)
    with pytest.raises(RulesError):
        parse_rules(text, "rules.yaml")


def test_tests_conftest_loads_without_test_dependencies() -> None:
    """The README's first command runs pytest in this repo (testpaths = tests) after a plain
    ``pip install .``: the tests' conftest must not need the test extra."""
    import subprocess
    import sys

    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    distributions = [re.split(r"[<>=!~\[ ]", requirement)[0].lower() for requirement in extra]
    modules = [name.removeprefix("pytest-").replace("-", "_") for name in distributions]
    assert {"hypothesis", "jsonschema", "xdist"} <= set(modules)
    code = f"import sys; [sys.modules.__setitem__(name, None) for name in {modules!r}]; import tests.conftest"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
