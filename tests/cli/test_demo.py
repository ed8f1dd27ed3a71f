"""`proteus-id demo` without a shipped model, and its listing of the example faces (both need no weights)."""

from __future__ import annotations

from proteus_id.cli.main import main


def test_demo_without_a_shipped_model_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    import proteus_id.defaults as defaults

    monkeypatch.setattr(defaults, "default_model_dir", lambda: None)
    assert main(["demo", "--out", str(tmp_path / "d.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ships no default model" in err[0]
    assert not (tmp_path / "d.mp4").exists()


def test_demo_lists_the_example_faces(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    assert "eval003" in out and "prompt:" in out


def test_demo_refuses_an_unknown_face_before_loading(capsys, tmp_path):
    from proteus_id.defaults import default_model_dir

    code = main(["demo", "--face", "nobody", "--out", str(tmp_path / "d.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert ("not a shipped example" in err) if default_model_dir() else ("ships no default model" in err)
