"""`proteus-id info` on a folder holding only the full-size transformer config prints the released counts."""

from __future__ import annotations

import json

from proteus_id.cli.main import main


def test_info_counts_the_full_model_from_its_config(golden, tmp_path, capsys):
    layout = json.loads((golden / "official_5b_layout.json").read_text())
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(layout["config"]))
    code = main(["info", "--model", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2  # the other components are missing, and it says so
    assert "8.816B parameters" in out
    assert "1.733B" in out and "966.600M" in out  # MIF and TAII
    assert "MISSING: the CogVideoX 3D VAE" in out
    assert err.startswith("error: ") and err.count("\n") == 1
