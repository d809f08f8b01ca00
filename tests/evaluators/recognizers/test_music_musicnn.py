"""music-musicnn-v1: the checkpoint reader, the mel front end against a numpy reference, the
network on rendered music, the mapping rule, the errors."""

import doctest
import importlib.util

import numpy as np
import pretty_midi
import pytest
import torch

from evaluators.recognizers import music_musicnn as mm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason=f"musicnn's checkpoints are not installed ({mm.INSTALL_HINT})")


@pytest.fixture(scope="module")
def recognizer():
    return mm.MusicnnRecognizer.from_pretrained()


def test_checkpoint_reader_gives_the_tensors_the_network_needs():
    prefix = str(mm.musicnn_checkpoint("MSD_musicnn")) + "/"
    t = mm.read_tf_checkpoint(prefix)
    assert len(t) == 11 * 4 + 10 * 2  # 11 batch norms, 8 convs + 2 dense layers (kernel, bias)
    assert t["conv2d/kernel"].shape == (7, 38, 1, 204)  # timbral 7 frames x 38 bands
    assert t["conv2d_1/kernel"].shape == (7, 67, 1, 204)
    assert [t[f"conv2d_{i}/kernel"].shape[0] for i in (2, 3, 4)] == [128, 64, 32]  # temporal
    assert t["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert t["batch_normalization/gamma"].shape == (1,)
    assert t["batch_normalization_9/moving_mean"].shape == (1506,)
    assert t["dense/kernel"].shape == (1506, 200) and t["dense_1/kernel"].shape == (200, 50)
    assert all(a.dtype == np.float32 and np.all(np.isfinite(a)) for a in t.values())
    assert np.all(t["batch_normalization_9/moving_variance"] > 0)
    everything = mm.read_tf_checkpoint(prefix, skip_optimizer=False)
    # 42 trainable tensors with two Adam slots each, 22 moving statistics, 2 beta powers: 150
    assert len(everything) == 42 * 3 + 22 + 2 and "dense/kernel/Adam_1" in everything
    np.testing.assert_array_equal(everything["dense/kernel"], t["dense/kernel"])


def _slaney_filters(sr, n_fft, n_mels):
    """Slaney's mel scale (linear 0-1 kHz at 200/3 Hz per mel, then log steps of ln(6.4)/27)
    and triangles of unit area, written out independently of torchaudio."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        log_part = 15 + np.log(np.maximum(f, 1e-9) / 1000) / (np.log(6.4) / 27)
        return np.where(f < 1000, f / (200 / 3), log_part)

    def mel_to_hz(m):
        return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))

    edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    w = np.zeros((n_mels, len(freqs)))
    for k in range(n_mels):
        lo, mid, hi = edges[k : k + 3]
        w[k] = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
        w[k] *= 2 / (hi - lo)
    return w  # (n_mels, n_fft // 2 + 1)


def test_mel_front_end_matches_a_numpy_slaney_reference():
    w = _slaney_filters(mm.SR, mm.N_FFT, mm.N_MELS)
    np.testing.assert_allclose(mm.mel_filters().numpy().T, w, atol=1e-6, rtol=1e-4)
    rng = np.random.default_rng(0)
    t = np.arange(mm.SR) / mm.SR
    x = (0.4 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    padded = np.pad(x.astype(np.float64), mm.N_FFT // 2)  # centred frames, zeros outside
    n = 1 + len(x) // mm.HOP
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(mm.N_FFT) / mm.N_FFT)  # periodic Hann
    frames = np.stack([padded[i * mm.HOP : i * mm.HOP + mm.N_FFT] for i in range(n)]) * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 257)
    reference = np.log10(10000 * (power @ w.T).astype(np.float16).astype(np.float64) + 1)
    ours = mm.log_mel(x).numpy()
    assert ours.shape == reference.shape == (n, 96)
    # float16 rounding of the mel power may fall one step apart: 2**-11 relative at most
    np.testing.assert_allclose(ours, reference, atol=5e-4)
    assert ours.max() > 3  # the tone's band is there, so the comparison compared something


def _rendered_piece(tmp_path, seconds=4.0):
    from generators.music.render import render_audio

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i in range(int(seconds / 0.25)):
        pitch = (60, 64, 67, 72)[i % 4]
        piano.notes.append(pretty_midi.Note(90, pitch, i * 0.25, i * 0.25 + 0.24))
    pm.instruments.append(piano)
    path = tmp_path / "arpeggio.mid"
    pm.write(str(path))
    return render_audio(path, sample_rate=22050, tail_s=0.5), 22050


def test_rendered_piece_gives_a_reading_in_the_shared_space(recognizer, tmp_path):
    audio, sr = _rendered_piece(tmp_path)
    r = recognizer(audio, sample_rate=sr)
    assert r.n_patches == 1
    assert sum(r.probabilities.values()) == pytest.approx(1.0)
    assert r.category == max(r.probabilities, key=r.probabilities.get)
    assert -1 <= r.valence <= 1 and -1 <= r.arousal <= 1
    assert len(r.tags) == 100 and all(0 <= p <= 1 for p in r.tags.values())
    mtt = sorted((p, k) for k, p in r.tags.items() if k.startswith("mtt/"))
    assert "mtt/piano" in [k for _, k in mtt[-3:]], mtt[-3:]  # a piano arpeggio is heard as piano
    assert r.as_spec().dominant == r.category


def test_too_short_clip_raises_a_clear_value_error(recognizer):
    with pytest.raises(ValueError, match="at least 3"):
        recognizer(np.full(2 * 16000, 0.1, dtype=np.float32) * np.sin(np.arange(32000)), 16000)
    with pytest.raises(ValueError, match="at least 187"):
        mm.patches(torch.zeros(100, 96))


def test_batch_equals_single(recognizer):
    torch.manual_seed(0)
    x = torch.rand(3, mm.PATCH_FRAMES, mm.N_MELS) * 4  # log-mel values lie in 0..5
    net = recognizer.networks["msd"]
    with torch.inference_mode():
        batch = net(x)
        single = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 50)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 1e-3  # different patches, different tags


def test_mapping_rule_follows_the_pole_tags():
    names = [f"msd/{t}" for t in mm.MSD_TAGS] + [f"mtt/{t}" for t in mm.MTT_TAGS]
    tags = dict.fromkeys(names, 0.01)
    v0, a0, _ = mm.tags_to_va(tags)
    assert abs(v0) < 0.2 and abs(a0) < 0.2  # balanced poles read near the centre
    v, a, poles = mm.tags_to_va({**tags, "msd/happy": 0.8, "mtt/fast": 0.7, "mtt/loud": 0.6})
    assert v > 0.8 and a > 0.8 and poles["valence+"] > poles["valence-"]
    v, a, _ = mm.tags_to_va({**tags, "msd/sad": 0.8, "mtt/slow": 0.7, "msd/Mellow": 0.6})
    assert v < -0.8 and a < -0.8


def test_module_docstring_example_runs():
    result = doctest.testmod(mm)
    assert result.attempted > 0 and result.failed == 0
