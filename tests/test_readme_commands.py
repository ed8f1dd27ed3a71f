"""The README's commands are the ones CI runs (a drifted README would hide a missing install step)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _command_after(marker: str) -> str:
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index(marker)
    block = lines[start + 1 :]
    begin = block.index("```bash")
    return block[begin + 1].strip()


def test_ci_runs_the_readme_test_command():
    command = _command_after("<!-- test-command -->")
    assert command in (REPO / ".ci" / "run").read_text()


def test_main_command_sets_up_and_runs():
    command = _command_after("<!-- main-command -->")
    assert "pip install" in command and "proteus-id" in command
