"""The music closed loop on a tiny seeded generator: files, report.json, report.html."""

import json

from evaluators.loop import evaluate_music


def test_loop_writes_pieces_and_a_self_contained_report(tiny_music, tmp_path):
    report = evaluate_music(tiny_music, tmp_path, ["happy", "sad"], [0.0, 1.0], [0, 1], num_bars=2)
    assert report["sweep"]["pieces"] == 8
    assert len(list((tmp_path / "pieces").glob("*.mid"))) == 8
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["accuracy_at_max_intensity"]["n"] == 4
    assert set(saved["intensity_spearman"]) == {"happy", "sad"}
    for guard in saved["quality_guards"].values():
        assert isinstance(guard["pass"], bool) and len(guard["bounds"]) == 2
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img") == 3 and "data:image/png;base64," in page
    assert page.count("<figcaption>") == 3  # every plot has its caption
    assert "http" not in page.split("<body>")[1]  # nothing fetched from outside
    assert "\u00b1" in page and "(n = 4)" in page  # the accuracy with its standard error


def test_more_seeds_at_the_top_count_in_the_accuracy_only(tiny_music, tmp_path):
    a = evaluate_music(tiny_music, tmp_path / "a", ["happy"], [0.0, 1.0], [0], num_bars=2, top_seeds=[0, 1, 2])
    b = evaluate_music(tiny_music, tmp_path / "b", ["happy"], [0.0, 1.0], [0], num_bars=2)
    assert a["accuracy_at_max_intensity"]["n"] == 3 and b["accuracy_at_max_intensity"]["n"] == 1
    assert a["sweep"]["pieces"] == 4 and a["intensity_spearman"] == b["intensity_spearman"]


def test_files_mode_scores_readable_files_and_lists_failed(tiny_music, tmp_path):
    from evaluators.loop import evaluate_files

    evaluate_music(tiny_music, tmp_path / "gen", ["happy", "sad"], [1.0], [0], num_bars=2)
    pieces = tmp_path / "gen" / "pieces"
    (pieces / "broken.mid").write_text("not midi")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,emotion\nhappy_1_0.mid,happy\nsad_1_0.mid,sad@0.9\nbroken.mid,sad\n")
    report = evaluate_files(pieces, labels, tmp_path / "rep")
    assert report["sweep"]["pieces"] == 2
    assert [f["file"] for f in report["failed"]] == ["broken.mid"]
    assert (tmp_path / "rep" / "report.html").exists()


def test_files_mode_unknown_emotion_is_exit_2(tmp_path, capsys):
    from apps.cli import main

    labels = tmp_path / "labels.csv"
    labels.write_text("file,emotion\na.mid,blorft\n")
    code = main(
        ["eval", "--files", str(tmp_path), "--labels", str(labels), "-o", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "line 2" in err and "unknown emotion 'blorft'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
