"""Speech emotion recognizers: the features, training on a labelled folder, the hub backend."""

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conditioning.vocabulary import CATEGORIES
from evaluators.recognizers.speech import (
    FEATURES,
    HubSpeechEmotionRecognizer,
    SpeechEmotionRecognizer,
    acoustic_features,
    map_label,
    read_labelled_folder,
    train_recognizer,
)

SR = 16000


def voice(f0=150.0, amp=0.3, seconds=1.5, vibrato=0.0, seed=0):
    """A crude voiced signal: harmonics of a gliding F0, syllable-like amplitude bursts."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    noise = np.random.default_rng(seed).normal(0, 0.03 * amp, len(t))
    return (amp * x * env / 2 + noise).astype(np.float32)


def test_features_are_finite_and_track_pitch_and_level():
    low, high = acoustic_features(voice(120), SR), acoustic_features(voice(240), SR)
    assert low.shape == (len(FEATURES),) and np.isfinite(low).all()
    i = FEATURES.index("f0_mean_st")
    assert high[i] - low[i] == pytest.approx(12.0, abs=0.6)  # one octave
    j = FEATURES.index("loud_mean_db")
    quiet = acoustic_features(voice(120, amp=0.1), SR)
    assert low[j] - quiet[j] == pytest.approx(20 * np.log10(3), abs=0.5)


def test_train_on_a_labelled_folder_and_read_back(tmp_path):
    rows = []
    for i in range(24):
        emo, f0, amp = [("sad", 110, 0.08), ("angry", 260, 0.5), ("neutral", 170, 0.25)][i % 3]
        name = f"c{i}.wav"
        sf.write(tmp_path / name, voice(f0 * (1 + 0.03 * (i // 3)), amp, seed=i), SR)
        rows.append({"file": name, "emotion": emo})
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "emotion"])
        w.writeheader()
        w.writerows(rows)
    rec = train_recognizer(tmp_path, tmp_path / "model", hidden=16, epochs=400)
    again = SpeechEmotionRecognizer.from_pretrained(tmp_path / "model")
    reading = again(voice(255, 0.5, seed=99), SR)
    assert set(reading.probabilities) == set(CATEGORIES)
    assert sum(reading.probabilities.values()) == pytest.approx(1.0)
    assert reading.category == "angry"
    assert again(voice(112, 0.08, seed=98), SR).category == "sad"
    assert rec.meta["clips"] == 24
    assert -1 <= reading.arousal <= 1 and reading.as_spec().dominant == "angry"


def test_labels_naming_an_unknown_emotion_are_refused(tmp_path):
    (tmp_path / "labels.csv").write_text("file,emotion\na.wav,blorp\n")
    with pytest.raises(ValueError, match="line 2"):
        read_labelled_folder(tmp_path)


def test_embedded_default_reads_real_speech():
    rec = SpeechEmotionRecognizer.from_pretrained()
    clip = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    r = rec(str(clip))
    assert r.category in CATEGORIES and r.recognizer == "speech-prosody-v1"
    assert rec.meta["validation_accuracy"] > 2.5 / len(CATEGORIES)  # chance is 1/9


def test_hub_labels_map_to_the_vocabulary():
    assert [map_label(x) for x in ("neu", "hap", "ANG", "Sadness", "fear", "xyz")] == [
        "neutral", "happy", "angry", "sad", "fearful", None]


def test_hub_backend_loads_a_transformers_audio_classifier(tmp_path):
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, classifier_proj_size=8,
                         id2label={0: "neu", 1: "ang", 2: "hap", 3: "sad"},
                         label2id={"neu": 0, "ang": 1, "hap": 2, "sad": 3})
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path)
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    rec = HubSpeechEmotionRecognizer(str(tmp_path))
    r = rec(voice(), SR)
    assert rec.licence == "apache-2.0"
    assert sum(r.probabilities.values()) == pytest.approx(1.0)
    assert r.probabilities["fearful"] == 0.0 and r.category in {"neutral", "angry", "happy", "sad"}
