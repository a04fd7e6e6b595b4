"""TOML: one reader and one writer for the package (alignlab/_toml.py)."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest

from alignlab._toml import dumps_toml, load_toml, loads_toml, toml_value

ROOT = Path(__file__).resolve().parents[1]


def test_written_toml_reads_back_the_same():
    tables = {
        "data": {"name": "fashion-mnist", "limit": None, "root": Path("/data/my sets"),
                 "input_shape": (1, 28, 28)},
        "optim": {"lr": 0.01, "weight_decay": 9e-5, "big": 1e300, "whole": 3.0,
                  "lr_milestones": [20, 30], "nesterov": False},
        "meta": {"quote": 'say "hi"\\ \n', "unicode": "élan", "a key.with dots": 1,
                 "neg": -math.inf},
    }
    text = dumps_toml(tables, header="written by a test\n\nsecond paragraph")
    assert text.startswith("# written by a test\n#\n# second paragraph\n\n[data]\n")
    back = loads_toml(text)
    assert "limit" not in back["data"]  # None: left out (the default)
    assert back["data"]["root"] == "/data/my sets"
    assert back["data"]["input_shape"] == [1, 28, 28]
    assert back["optim"] == {**tables["optim"], "lr_milestones": [20, 30]}
    assert isinstance(back["optim"]["whole"], float)
    assert back["meta"] == tables["meta"]
    assert math.isnan(loads_toml(f"v = {toml_value(math.nan)}")["v"])
    with pytest.raises(ValueError, match=r"^`value` must be a TOML scalar or list"):
        toml_value({"a": 1})


def test_unreadable_files_are_one_line_naming_the_argument(tmp_path):
    cases = {
        tmp_path / "missing.toml": "must be an existing TOML file, got '{}'.",
        tmp_path: "must be a TOML file, got the folder '{}'.",
        tmp_path / "bad.toml": "must be valid TOML, got '{}' (Expected ']' at the end of a "
                               "table declaration (at line 1, column 7)).",
        tmp_path / "binary.toml": "must be valid TOML, got '{}' (not UTF-8 text).",
    }
    (tmp_path / "bad.toml").write_text("[optim\n")
    (tmp_path / "binary.toml").write_bytes(b"\x80\x81 = 1\n")
    for path, message in cases.items():
        with pytest.raises(ValueError) as info:
            load_toml(path, name="CONFIG")
        assert str(info.value) == "`CONFIG` " + message.format(path)
    with pytest.raises(ValueError, match=r"^`base` in 'a.toml' must be an existing"):
        load_toml(tmp_path / "missing.toml", name="base", where=" in 'a.toml'")


def test_python_310_reads_with_tomli():
    """Python 3.10 has no tomllib; pyproject installs tomli there. Simulated here: tomllib
    hidden, tomli standing in (the same parser), and every TOML user still imports."""
    code = (
        "import sys, tomllib\n"
        "sys.modules['tomli'] = tomllib\n"
        "sys.modules['tomllib'] = None  # import tomllib -> ModuleNotFoundError\n"
        "import alignlab._toml, alignlab.train.config, alignlab.reports.curves\n"
        "assert alignlab._toml.tomllib is tomllib\n"
        "assert alignlab.train.config.parse_value('[1, 2]') == [1, 2]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _toml_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return [n for n in names if n.split(".")[0] in ("tomllib", "tomli")]


def test_one_toml_reader():
    """Only alignlab/_toml.py imports a TOML parser; everything else reads through it."""
    files = [p for d in ("alignlab", "analysis", "tests") for p in (ROOT / d).rglob("*.py")]
    readers = sorted(str(p.relative_to(ROOT)) for p in files if _toml_imports(p))
    assert readers == ["alignlab/_toml.py"]
