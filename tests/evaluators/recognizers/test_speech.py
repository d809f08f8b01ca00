"""Speech emotion recognizers: the features, training on a labelled folder, the hub backend."""

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conditioning.vocabulary import CATEGORIES
from evaluators.recognizers.speech import (
    _MLP,
    FEATURES,
    FEATURES_V1,
    HubSpeechEmotionRecognizer,
    SpeechEmotionRecognizer,
    acoustic_features,
    map_label,
    read_labelled_folder,
    train_recognizer,
)

SR = 16000


def voice(f0=150.0, amp=0.3, seconds=1.5, vibrato=0.0, seed=0, syllables=2.5):
    """A crude voiced signal: harmonics of a gliding F0, syllable-like amplitude bursts."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(2 * np.pi * syllables * t), 0, None) ** 0.5
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


def test_new_functionals_follow_rate_and_pitch_movement():
    slow, fast = acoustic_features(voice(150, syllables=2.0), SR), acoustic_features(voice(150, syllables=5.0), SR)
    i = FEATURES.index("syllable_rate")
    assert fast[i] > 1.8 * slow[i] > 0  # about 2 vs 5 nuclei per second
    flat, moving = acoustic_features(voice(150), SR), acoustic_features(voice(150, vibrato=0.08), SR)
    for name in ("f0_rise_slope", "f0_fall_slope", "f0_p80_st"):
        assert moving[FEATURES.index(name)] > flat[FEATURES.index(name)]
    assert len(FEATURES) > len(FEATURES_V1) and FEATURES[: len(FEATURES_V1)] == FEATURES_V1


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


def test_excluded_functionals_are_not_read_and_the_checkpoint_says_so(tmp_path):
    folder = _paired_folder(tmp_path)
    gone = ("alpha_unvoiced", "mean_unvoiced_s")
    rec = train_recognizer(folder, tmp_path / "model", hidden=16, epochs=50, exclude_features=gone)
    again = SpeechEmotionRecognizer.from_pretrained(tmp_path / "model")
    assert again.features == tuple(f for f in FEATURES if f not in gone) == rec.features
    assert again.mean.shape == (len(FEATURES) - 2,) and again.reference_head.mean.shape == (len(FEATURES) - 2,)
    # a clip that differs from another only in an excluded functional reads the same
    f = acoustic_features(voice(150, 0.3, seed=3), SR)
    g = f.copy()
    g[FEATURES.index("alpha_unvoiced")] += 20.0
    assert again.read_features(g)[0].probabilities == again.read_features(f)[0].probabilities
    with pytest.raises(ValueError, match="unknown functionals"):
        train_recognizer(folder, tmp_path / "m2", hidden=8, epochs=5, exclude_features=["no_such"])


def test_an_ensemble_reads_the_mean_of_its_members_and_round_trips(tmp_path):
    import torch

    folder = _paired_folder(tmp_path)
    rec = train_recognizer(folder, tmp_path / "model", hidden=8, epochs=60, ensemble=3)
    again = SpeechEmotionRecognizer.from_pretrained(tmp_path / "model")
    assert again.meta["ensemble"] == 3 and len(again.model.members) == 3
    assert len(again.reference_head.model.members) == 3
    f = acoustic_features(voice(140, 0.2, seed=4), SR)
    ref = acoustic_features(voice(120, 0.2, seed=5), SR)
    r, r_ref = again.read_features(f)[0], again.read_features(f, ref)[0]
    z = torch.from_numpy(np.clip((f - again.mean) / again.scale, -6, 6)[None]).float()
    with torch.inference_mode():
        each = [torch.softmax(m.eval()(z)[0], -1)[0].numpy() for m in again.model.members]
    assert not np.allclose(each[0], each[1])  # the members differ (own seeds)
    mean = np.mean(each, axis=0)
    assert [r.probabilities[c] for c in CATEGORIES] == pytest.approx(mean.tolist(), abs=1e-5)
    assert r.embedding.shape == (3 * 8,)
    assert rec.read_features(f, ref)[0].probabilities == pytest.approx(r_ref.probabilities, abs=1e-6)


def _paired_folder(tmp_path):
    """Speakers with their own pitch and level; angry = higher and louder than the speaker's own
    neutral, sad = lower and quieter. Every clip's reference is that speaker's neutral of another
    'sentence' (another seed and syllable rate)."""
    rows = []
    for s, (f0, amp) in enumerate([(100, 0.08), (130, 0.3), (170, 0.12), (220, 0.4), (280, 0.15), (330, 0.35)]):
        for k in range(3):
            ref = f"s{s}_{k}_ref.wav"
            sf.write(tmp_path / ref, voice(f0, amp, seed=100 * s + k, syllables=2.5 + 0.3 * k), SR)
            for emo, df, da in (("angry", 1.3, 2.5), ("sad", 0.78, 0.4), ("neutral", 1.0, 1.0)):
                name = f"s{s}_{k}_{emo}.wav"
                sf.write(tmp_path / name, voice(f0 * df, min(amp * da, 0.9), seed=100 * s + k + 50,
                                                syllables=2.4 + 0.3 * ((k + 1) % 3)), SR)
                rows.append({"file": name, "emotion": emo, "speaker": f"s{s}", "group": f"s{s}",
                             "reference": f"s{s}_{(k + 1) % 3}_ref.wav", "role": "clip"})
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_speaker_normalised_reading_uses_the_speakers_own_neutral(tmp_path):
    folder = _paired_folder(tmp_path)
    rec = train_recognizer(folder, tmp_path / "model", hidden=16, epochs=400, holdout_speakers=1)
    assert rec.supports_reference and "reference" in rec.meta
    assert 0.0 <= rec.meta["reference"]["validation_accuracy"] <= 1.0
    again = SpeechEmotionRecognizer.from_pretrained(tmp_path / "model")
    assert again.supports_reference
    # a high, loud speaker's sad voice is still higher and louder than a low, quiet speaker's angry
    # voice: only the speaker's own neutral tells them apart
    hi_ref, lo_ref = voice(300, 0.4, seed=7), voice(110, 0.09, seed=8)
    hi_sad, lo_angry = voice(300 * 0.78, 0.16, seed=9), voice(110 * 1.3, 0.22, seed=10)
    sad = again(hi_sad, SR, reference=(hi_ref, SR))
    angry = again(lo_angry, SR, reference=(lo_ref, SR))
    assert sad.category == "sad" and angry.category == "angry"
    assert angry.arousal > sad.arousal
    assert sad.recognizer == "speech-prosody-v1+reference"
    plain = again(hi_sad, SR)
    assert sum(sad.probabilities.values()) == pytest.approx(1.0)
    assert np.isfinite(list(sad.probabilities.values())).all()
    assert plain.probabilities != sad.probabilities
    # the reference as a file reads the same as the reference as an array
    sf.write(tmp_path / "hi_ref.wav", hi_ref, SR)
    by_file = again(hi_sad, SR, reference=tmp_path / "hi_ref.wav")
    assert by_file.probabilities["sad"] == pytest.approx(sad.probabilities["sad"], abs=1e-3)


def test_pooled_references_are_the_groups_neutral_speech_with_other_words():
    from evaluators.recognizers.speech import pool_references

    def row(f, text, group, ref):
        return {"path": Path(f), "text": text, "group": group, "reference": [Path(ref)]}

    rows = [row("a_ref", "one", "g", "b_ref"), row("a_sad", "one", "g", "b_ref"),
            row("b_ref", "two", "g", "c_ref"), row("c_ref", "three", "g", "a_ref"),
            row("x_sad", "one", "h", "x_ref"), row("x_ref", "one", "h", "x_ref")]
    pooled = {str(r["path"]): [str(f) for f in r["reference"]] for r in pool_references(rows)}
    assert pooled["a_sad"] == ["b_ref", "c_ref"] and pooled["a_ref"] == ["b_ref", "c_ref"]
    assert pooled["b_ref"] == ["a_ref", "c_ref"]
    assert pooled["x_sad"] == ["x_ref"]  # no other words in its group: keeps its own


def test_weights_without_a_reference_head_refuse_reference_and_keep_their_functionals(tmp_path):
    """A checkpoint of the first version (24 functionals, no second head) still loads and reads."""
    rng = np.random.default_rng(0)
    old = SpeechEmotionRecognizer(_MLP(len(FEATURES_V1), 8, len(CATEGORIES)), rng.normal(size=24),
                                  np.ones(24), {}, FEATURES_V1)
    old.save_pretrained(tmp_path)
    again = SpeechEmotionRecognizer.from_pretrained(tmp_path)
    assert again.features == FEATURES_V1 and not again.supports_reference
    clip = voice(150)
    a, b = old(clip, SR), again(clip, SR)
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
    with pytest.raises(ValueError, match="no speaker-normalised reading"):
        again(clip, SR, reference=(voice(140, seed=3), SR))


def test_labels_naming_an_unknown_emotion_are_refused(tmp_path):
    (tmp_path / "labels.csv").write_text("file,emotion\na.wav,blorp\n")
    with pytest.raises(ValueError, match="line 2"):
        read_labelled_folder(tmp_path)


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def test_embedded_default_reads_real_speech():
    rec = SpeechEmotionRecognizer.from_pretrained()
    clip = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"
    r = rec(str(clip))
    assert r.category in CATEGORIES and r.recognizer == "speech-prosody-v1"
    assert rec.meta["validation_accuracy"] > 2.5 / len(CATEGORIES)  # chance is 1/9
    assert rec.supports_reference and rec.meta["reference"]["validation_accuracy"] > 5 / len(CATEGORIES)
    # another sentence of the same reader as the reference: a different, finite, normalised reading
    n = rec(str(clip), reference=str(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0890.wav"))
    assert n.recognizer == "speech-prosody-v1+reference" and n.category in CATEGORIES
    assert np.isfinite(list(n.probabilities.values())).all()
    assert sum(n.probabilities.values()) == pytest.approx(1.0)
    assert n.probabilities != r.probabilities


def test_embedded_default_hears_louder_higher_speech_as_more_aroused():
    """The same real sentence moved by WORLD (no model): higher, wider, louder, faster and brighter
    vs lower, narrower, quieter, slower and darker; read against the original as the reference."""
    from conditioning.audio import load_audio
    from generators.speech.features import SR as WSR
    from generators.speech.features import (
        apply_prosody,
        prosody_features,
        rule_changes,
        synthesize,
        world_analyze,
    )

    rec = SpeechEmotionRecognizer.from_pretrained()
    src = load_audio(str(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"), target_sr=WSR).wav
    feats = world_analyze(src)

    def moved(f0, rng, loud, rate, tilt):
        raw = np.array([f0, rng, loud, rate, tilt, 0.0, 0.0, 0.0, 0.0])
        y = synthesize(apply_prosody(feats, rule_changes(prosody_features(feats), raw)))
        return y / max(1.0, np.abs(y).max() / 0.95)

    tense = rec(moved(3.0, 0.3, 7.0, 0.1, 2.5), WSR, reference=(src, WSR))
    same = rec(moved(0.0, 0.0, 0.0, 0.0, 0.0), WSR, reference=(src, WSR))
    lax = rec(moved(-3.0, -0.4, -7.0, -0.15, -2.5), WSR, reference=(src, WSR))
    assert tense.arousal > same.arousal > lax.arousal
    assert tense.probabilities["sad"] < lax.probabilities["sad"]


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
