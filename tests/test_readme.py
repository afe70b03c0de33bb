"""The README's examples run as written, and its CLI example prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_python_examples_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, types_, transaction = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    for block in (api, types_, transaction):
        exec(compile(block, "README.md", "exec"), {})
    import snapkv

    with snapkv.open(tmp_path / "data") as store:
        assert dict(store.items()) == {"user:1": "Ada"}
    with snapkv.open(tmp_path / "shop") as store:
        assert dict(store.hashes["cart:7"]) == {"apple": "5"}
        assert list(store.lists["jobs"]) == ["send-mail"]
        assert store.zsets["board"].range_by_rank(0, -1) == ["bob", "ada"]
    with snapkv.open(tmp_path / "bank", journal=True) as store:
        assert (store.get("balance:alice"), store.db(1).get("balance:bob")) == ("90", "110")


def test_the_main_command_prints_what_the_readme_says() -> None:
    said = re.search(r"It prints `(.*?)`", README)
    assert said is not None
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "run", "examples/spec-3.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == said.group(1)


def test_the_serve_synopsis_is_the_one_serve_help_prints() -> None:
    synopsis = re.search(r"```text\n(snapkv serve .*?)\n```", README)
    assert synopsis is not None
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[0] == "usage: " + synopsis.group(1)


def test_install_lines_work_from_a_clone() -> None:
    """No install line names a package index entry: snapkv installs from its own tree."""
    docs = [README, *(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))]
    for text in docs:
        for line in re.findall(r"pip install [^\n`]*", text):
            assert "snapkv[" not in line, line
