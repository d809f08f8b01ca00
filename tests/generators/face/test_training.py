"""Face training: fitting the rig to tracked landmarks, head-motion removal, the MEAD-style video
adapter on videos this project renders, and a tiny run on the synthetic corpus that resumes."""

import numpy as np
import torch

from configs import config_path, load_layered
from generators.face.rig import MOTION, Rig
from generators.face.training import align_to, fit_rig_params, scan_videos


def test_fit_recovers_known_rig_parameters(portrait):
    rig = Rig(portrait, neutralize=False)
    truth = {"AU12": 0.7, "AU26": 0.4, "AU1": 0.5, "AU18": 0.3}
    rest = portrait.landmarks
    frames = np.stack([rest, rest + rig.displace(truth)])
    p = fit_rig_params(rest, frames, rig)
    assert p.shape == (2, len(MOTION)) and np.abs(p[0]).max() < 1e-6
    for au, v in truth.items():
        assert abs(p[1, MOTION.index(au)] - v) < 0.05, au


def test_align_removes_a_similarity_transform(portrait):
    rest = portrait.landmarks
    a = np.radians(7.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (rest - 100) @ rot.T * 1.2 + 130
    assert np.abs(align_to(rest, moved[None])[0] - rest).max() < 1e-6


def test_mead_layout_videos_train_a_model(tmp_path, tiny_face_pipeline, astronaut, real_clip):
    """Videos of the MEAD layout, made by rendering talking heads, are tracked, fitted and
    trained on; the direction model is refitted on what was measured."""
    from conditioning.audio import load_audio
    from generators.face.training import build_video_examples, train_face

    wav = load_audio(real_clip, target_sr=16000).wav[:16000]
    for emotion, folder in (("happy@1.0", "happy/level_3"), ("neutral", "neutral/level_1")):
        out = tiny_face_pipeline(astronaut, wav, 16000, emotion=emotion, num_inference_steps=1,
                                 face_resolution=96, generator=torch.Generator().manual_seed(0))
        path = tmp_path / "M001" / "video" / "front" / folder / "001.mp4"
        path.parent.mkdir(parents=True)
        out.save(path)
    videos = scan_videos(tmp_path, "mead")
    assert sorted(v.emotion for v in videos) == ["happy", "neutral"]
    data = {"source": "mead", "root": str(tmp_path), "crop_frames": 32}
    examples, model, meta = build_video_examples(data, 0)
    assert meta["videos"] == 2 and set(model.categories) >= {"happy"}
    cond, x = examples.draw()
    assert cond.shape == (32, 97) and x.shape == (32, len(MOTION)) and np.isfinite(x).all()
    cfg = load_layered(config_path("train/face_tiny.yaml"))
    cfg["data"] = data
    cfg["training"]["max_steps"] = 2
    final = train_face(cfg, output_dir=str(tmp_path / "run"))
    assert (final / "denoiser").is_dir() and (final / "emotion").is_dir()


def test_tiny_tts_run_trains_and_resumes(tmp_path):
    from generators.face.pipeline_face import TalkingHeadPipeline
    from generators.face.training import train_face

    cfg = load_layered(config_path("train/face_tiny.yaml"))
    cfg["data"]["cache"] = str(tmp_path / "cache")
    final = train_face(cfg, output_dir=str(tmp_path / "run"))
    meta = (final / "training.json").read_text()
    assert '"steps": 4' in meta
    pipe = TalkingHeadPipeline.from_pretrained(final)
    assert pipe.direction_model is not None
    again = train_face(cfg, output_dir=str(tmp_path / "run"), max_steps=6)
    assert '"steps": 6' in (again / "training.json").read_text()


def test_clip_cache_round_trips_and_shares_one_array(tmp_path):
    from generators.face.training import SAMPLES_PER_FRAME, Clip, _load_clips, _save_clips

    rng = np.random.default_rng(0)
    clips = [Clip(rng.normal(size=n * SAMPLES_PER_FRAME).astype(np.float32) * 0.1,
                  rng.normal(size=(n, 5)).astype(np.float32), rng.normal(size=n).astype(np.float32),
                  f"text {i}", f"v{i}") for i, n in enumerate([4, 9, 2])]
    _save_clips(tmp_path / "c.npz", clips)
    back = _load_clips(tmp_path / "c.npz")
    for a, b in zip(clips, back):
        assert np.allclose(a.wav, b.wav, atol=1e-3) and np.array_equal(a.mouth, b.mouth)
        assert np.array_equal(a.brows, b.brows) and (a.text, a.voice) == (b.text, b.voice)
    assert back[0].mouth.base is back[2].mouth.base is not None  # one loaded array, not a copy per clip
