"""The speech closed loop reads every conversion three times: plainly, speaker-normalised (the
source as the reference) and channel-matched (the source converted to neutral as the reference)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from evaluators.loop_speech import evaluate_speech, real_recordings
from evaluators.recognizers.speech import SpeechCueRecognizer, SpeechEmotionRecognizer


def louder(wav, sr, emotion, generator=None):
    """A stand-in converter: only the level moves with the intensity (no model involved)."""
    intensity = float(emotion.split("@")[1]) if "@" in emotion else 0.0
    return SimpleNamespace(audio=np.asarray(wav, np.float32) * 10 ** (6 * intensity / 20) * 0.5, sample_rate=sr)


def test_both_readings_are_recorded_side_by_side(tmp_path):
    prosody = SpeechEmotionRecognizer.from_pretrained()
    report = evaluate_speech(louder, tmp_path, real_recordings(1), ["angry", "sad"], [0.0, 1.0],
                             [prosody, SpeechCueRecognizer()], keep_audio=False)
    names = [r["name"] for r in report["recognizers"]]
    assert names == ["speech-prosody-v1", "speech-cues-v1", "speech-prosody-v1+reference",
                     "speech-prosody-v1+neutral-conversion"]
    norm = report["speaker_normalised"]
    assert norm["accuracy_at_max_intensity"]["n"] == report["accuracy_at_max_intensity"]["n"] == 2
    assert set(norm["intensity_spearman"]) == {"angry", "sad"}
    # the figure of record is the speaker-normalised reading; the plain one stays beside it
    assert report["headline_reading"]["name"] == "speech-prosody-v1+reference"
    assert report["accuracy_at_max_intensity"] == norm["accuracy_at_max_intensity"]
    assert {e: v["value"] for e, v in report["intensity_spearman"].items()} == \
        {e: v["value"] for e, v in norm["intensity_spearman"].items()}
    side = report["readings_side_by_side"]
    assert side["accuracy_at_max_intensity"]["plain"] == report["plain_reading"]["accuracy_at_max_intensity"]["accuracy"]
    assert side["accuracy_at_max_intensity"]["speaker_normalised"] == norm["accuracy_at_max_intensity"]["accuracy"]
    rows = report["rows"]
    assert len(rows) == 4 and all(0 <= r["p_target_normalised"] <= 1 for r in rows)
    # the normalised reading is its own: read against the source, not the plain reading again
    src = real_recordings(1)[0][0]
    for r in rows:
        res = louder(*_load(src), emotion=f"{r['emotion']}@{r['intensity']:g}")
        again = prosody(res.audio, res.sample_rate, reference=_load(src))
        assert r["p_target_normalised"] == pytest.approx(again.probabilities[r["emotion"]], abs=1e-6)
        neutral = louder(*_load(src), emotion="neutral")
        matched = prosody(res.audio, res.sample_rate, reference=(neutral.audio, neutral.sample_rate))
        assert r["p_target_channel_matched"] == pytest.approx(matched.probabilities[r["emotion"]], abs=1e-6)
    # the converter's own neutral output as the reference: its intensity-0 output is that very
    # clip, and reads as neutral
    assert all(r["read_channel_matched"] == "neutral" for r in rows if r["intensity"] == 0)
    assert report["channel_matched"]["accuracy_at_max_intensity"]["n"] == 2
    assert side["accuracy_at_max_intensity"]["channel_matched"] == \
        report["channel_matched"]["accuracy_at_max_intensity"]["accuracy"]
    assert any(r["p_target"] != pytest.approx(r["p_target_normalised"], abs=1e-4) for r in rows)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert "speaker_normalised" in saved and saved["rows"][0]["read_normalised"] == rows[0]["read_normalised"]
    page = (tmp_path / "report.html").read_text()
    assert "speaker-normalised" in page and "the known limit" in page


def test_top_only_recordings_count_in_the_accuracy_not_in_the_spearman(tmp_path):
    prosody = SpeechEmotionRecognizer.from_pretrained()
    recs = real_recordings(3)
    both = evaluate_speech(louder, tmp_path / "a", recs[:1], ["angry"], [0.0, 1.0], [prosody],
                           keep_audio=False, top_recordings=recs[1:])
    alone = evaluate_speech(louder, tmp_path / "b", recs[:1], ["angry"], [0.0, 1.0], [prosody], keep_audio=False)
    assert both["accuracy_at_max_intensity"]["n"] == 3 and alone["accuracy_at_max_intensity"]["n"] == 1
    assert both["sweep"]["conversions"] == 4 and both["sweep"]["top_only_recordings"] == 2
    assert both["intensity_spearman"] == alone["intensity_spearman"]
    assert json.dumps(both["correlates"]) == json.dumps(alone["correlates"])  # (NaN where flat)
    assert all("/" not in r for r in both["sweep"]["recordings"])  # file names, not paths


def _load(path):
    from conditioning.audio import load_audio

    a = load_audio(path)
    return a.wav, a.sample_rate
