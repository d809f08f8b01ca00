"""The face loop end to end on a real portrait and a real recording, with a tiny untrained motion
model: every reading and guard is there and has the right shape; the page renders."""

import json
from pathlib import Path

import numpy as np

CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


def test_face_loop_writes_a_complete_report(tiny_face_pipeline, tmp_path):
    from skimage import data

    from evaluators.loop_face import evaluate_face
    from generators.face.portrait import analyse_portrait

    pipe = tiny_face_pipeline
    portrait = analyse_portrait(data.astronaut(), face_resolution=128)

    def animate(image, audio, sr, emotion, generator):
        return pipe(image, audio, sr, emotion=emotion, generator=generator, portrait=portrait,
                    num_inference_steps=2)

    rep = evaluate_face(animate, tmp_path, None, [CLIP], ["happy", "sad"], [0.0, 1.0], every=5,
                        keep_video=True)
    assert rep["sweep"]["videos"] == 4
    assert set(rep["expression"]) == {"happy", "sad"}
    q = rep["quality"]
    assert 0.0 < q["ssim_outside_min"] <= 1.0 and q["mesh_found_min"] > 0.9
    assert q["duration_error_max_s"] <= 0.04
    assert np.isfinite(q["lipsync_pearson_mean"])
    for g in rep["quality_guards"].values():
        assert isinstance(g["pass"], bool) and len(g["bounds"]) == 2
    assert json.loads((tmp_path / "report.json").read_text())["medium"] == "face"
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64" in html and "lipsync" in html
    assert "(Spearman, threshold 0.8)" in html  # the face issue's threshold, not music's 0.9
    assert (tmp_path / next(r["file"] for r in rep["rows"] if "file" in r)).stat().st_size > 1000


def test_portrait_panel_reads_real_faces_and_skips_what_has_none(tiny_face_pipeline, tmp_path):
    """Three LFW faces and one blank image: the blank is listed as skipped with the reason, the
    faces are read at every intensity, the smile raises P(happy) on average, the sheet is there."""
    from PIL import Image

    from evaluators.loop_face import evaluate_portrait_panel, lfw_portraits

    portraits = lfw_portraits(3) + [("blank", np.full((300, 300, 3), 128, np.uint8))]
    assert [name for name, _ in portraits[:3]] == ["lfw_subset[0]", "lfw_subset[50]", "lfw_subset[99]"]
    panel = evaluate_portrait_panel(tiny_face_pipeline.expression_stills, portraits, ["happy", "sad"], [0.0, 1.0],
                                    sheet=tmp_path / "panel.png")
    assert panel["portraits"] == 3
    assert [s["portrait"] for s in panel["skipped"]] == ["blank"] and "no face" in panel["skipped"][0]["error"]
    happy = panel["emotions"]["happy"]
    assert len(happy["p_target_means"]) == 2 and happy["p_target_means"][1] > happy["p_target_means"][0]
    assert sum(happy["read_at_top"].values()) == 3 and sum(panel["relaxed_read_as"].values()) == 3
    assert Image.open(tmp_path / "panel.png").size == (3 * 128, 3 * 128)
