"""music-vgg-v1: the checkpoint mapping (every tensor once, every shape), the network against
logits of the original TensorFlow graph, a rendered piece, the shared rule, the errors."""

import doctest
import importlib.util

import numpy as np
import pretty_midi
import pytest
import torch

from evaluators.recognizers import music_musicnn as mm
from evaluators.recognizers import music_vgg as mv

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason=f"musicnn's checkpoints are not installed ({mm.INSTALL_HINT})")


@pytest.fixture(scope="module")
def recognizer():
    return mv.MusicVggRecognizer.from_pretrained()


@pytest.fixture(scope="module")
def msd_tensors():
    return mm.read_tf_checkpoint(str(mv.vgg_checkpoint("MSD_vgg")) + "/")


def test_every_checkpoint_tensor_is_used_once_with_its_shape(msd_tensors):
    t = msd_tensors
    assert len(t) == 6 * 4 + 6 * 2  # 6 batch norms; 5 convs + 1 dense (kernel, bias)
    assert t["1CNN/kernel"].shape == (3, 3, 1, 128)
    assert all(t[f"{i}CNN/kernel"].shape == (3, 3, 128, 128) for i in (2, 3, 4, 5))
    assert t["dense/kernel"].shape == (256, 50)  # (2 frames x 1 band x 128 maps) after pool5
    model = mv.vgg_from_tensors(t)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    # as many numbers in the model as in the checkpoint, and each parameter holds its tensor
    assert sum(v.numel() for v in state.values()) == sum(a.size for a in t.values())
    np.testing.assert_array_equal(state["convs.1.weight"].numpy(),
                                  t["2CNN/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["head.weight"].numpy(), t["dense/kernel"].T)
    np.testing.assert_array_equal(state["bns.4.running_var"].numpy(),
                                  t["batch_normalization_5/moving_variance"])
    np.testing.assert_array_equal(state["input_bn.running_mean"].numpy(),
                                  t["batch_normalization/moving_mean"])
    # MTT_vgg has the same layout
    assert mv.load_vgg(str(mv.vgg_checkpoint("MTT_vgg")) + "/").head.out_features == 50


def test_loader_refuses_extra_missing_and_misshapen_tensors(msd_tensors):
    t = msd_tensors
    with pytest.raises(ValueError, match="not used by Vgg: \\['6CNN/bias'\\]"):
        mv.vgg_from_tensors({**t, "6CNN/bias": np.zeros(128, np.float32)})
    with pytest.raises(ValueError, match="3CNN/bias is missing"):
        mv.vgg_from_tensors({k: v for k, v in t.items() if k != "3CNN/bias"})
    with pytest.raises(ValueError, match="4CNN/kernel has shape"):
        mv.vgg_from_tensors({**t, "4CNN/kernel": t["4CNN/kernel"].transpose(1, 0, 3, 2)[:2]})
    with pytest.raises(ValueError, match="dense/kernel has shape"):
        mv.vgg_from_tensors({**t, "dense/kernel": t["dense/kernel"].T.copy()})


#: The first ten logits of the original TensorFlow graph (musicnn 0.1.0 ``models.vgg``,
#: TensorFlow 2.21 with tf-keras, is_training False) on the patch of ``_fixed_patch``.
TF_LOGITS = {
    "msd": [-3.549407, -4.198191, -4.52282, -3.793799, 0.389414, -5.419144, -0.794804,
            -4.385955, -5.977868, -6.190018],
    "mtt": [-7.687761, -9.721469, -5.70662, 2.812739, -12.368395, -4.725421, 2.101094,
            -3.329651, -1.509958, -7.097011],
}


def _fixed_patch():
    t, f = np.arange(187)[:, None], np.arange(96)[None, :]
    return torch.from_numpy(
        (2.5 + 1.5 * np.sin(0.37 * t + 0.11 * f) * np.cos(0.05 * f)).astype(np.float32)[None])


def test_network_matches_the_original_graph_on_a_fixed_patch(recognizer):
    with torch.inference_mode():
        for key, expected in TF_LOGITS.items():
            logits = recognizer.networks[key](_fixed_patch())[0, :10].numpy()
            np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


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


def test_rendered_piece_gives_a_reading_by_the_shared_rule(recognizer, tmp_path):
    audio, sr = _rendered_piece(tmp_path)
    r = recognizer(audio, sample_rate=sr)
    assert isinstance(r, mm.MusicnnReading) and r.recognizer == "music-vgg-v1"
    assert r.n_patches == 1
    assert sum(r.probabilities.values()) == pytest.approx(1.0)
    assert r.category == max(r.probabilities, key=r.probabilities.get)
    assert -1 <= r.valence <= 1 and -1 <= r.arousal <= 1
    assert len(r.tags) == 100 and all(0 <= p <= 1 for p in r.tags.values())
    mtt = sorted((p, k) for k, p in r.tags.items() if k.startswith("mtt/"))
    assert "mtt/piano" in [k for _, k in mtt[-3:]], mtt[-3:]  # a piano arpeggio is heard as piano
    v, a, poles = mm.tags_to_va(r.tags)  # music-musicnn-v1's rule, unchanged
    assert (r.valence, r.arousal, r.poles) == (v, a, poles)
    assert r.as_spec().dominant == r.category


def test_too_short_clip_raises_a_clear_value_error(recognizer):
    with pytest.raises(ValueError, match="at least 3"):
        recognizer(np.full(2 * 16000, 0.1, dtype=np.float32) * np.sin(np.arange(32000)), 16000)
    with pytest.raises(ValueError, match="187, 96"):
        recognizer.networks["mtt"](torch.zeros(1, 150, 96))


def test_batch_equals_single(recognizer):
    torch.manual_seed(0)
    x = torch.rand(3, mm.PATCH_FRAMES, mm.N_MELS) * 4  # log-mel values lie in 0..5
    net = recognizer.networks["mtt"]
    with torch.inference_mode():
        batch = net(x)
        single = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 50)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 1e-3  # different patches, different tags


def test_module_docstring_example_runs():
    result = doctest.testmod(mv)
    assert result.attempted > 0 and result.failed == 0
