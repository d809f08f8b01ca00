"""`affect studio` through its API: the studio served on a free loopback port in this process,
every named endpoint called with gradio_client on the embedded defaults and real inputs (LibriVox
recordings, the bundled portrait), bad inputs refused with the job layer's one line, two clients
served at once into their own folders, and an endpoint's output equal to the job's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import apps.studio  # noqa: E402,F401  (apps.common: analytics off before gradio loads)
from apps.jobs import FaceJob, JobError, Models, MusicJob, SpeechJob, run  # noqa: E402

gradio = pytest.importorskip("gradio", reason="the studio needs the [studio] extra (gradio); .ci/setup installs it")
from gradio_client import Client, handle_file  # noqa: E402

CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
LONGER = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav")
PORTRAIT = Path(__file__).resolve().parents[2] / "configs" / "render" / "portrait.jpg"
CONTROL = {"emotion_mode": "category", "category": "angry", "category_b": "sad", "balance": 0.7,
           "intensity": 0.8, "curve": "", "words": "", "reference": None}
READING_FIELDS = {"recognizer", "category", "probability", "valence", "arousal", "probabilities"}
MAX_AUDIO_S = 12.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 4 s line (cut from a LibriVox recording), a PNG with no face, a PNG named like audio,
    and a recording longer than this studio takes."""
    folder = tmp_path_factory.mktemp("studio_inputs")
    wav, sr = sf.read(LONGER, dtype="float32")
    line = folder / "line_4s.wav"
    sf.write(line, wav[: 4 * sr], sr)
    blank = folder / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    fake = folder / "not_audio.wav"
    fake.write_bytes(blank.read_bytes())
    long = folder / "long.wav"
    sf.write(long, np.tile(wav, 3)[: int((MAX_AUDIO_S + 3) * sr)], sr)
    return {"line": line, "blank": blank, "fake": fake, "long": long, "folder": folder}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from apps.studio.app import launch
    from apps.studio.handlers import Limits, Studio
    from apps.studio.job import free_port

    studio = Studio(tmp_path_factory.mktemp("studio_root"), Models(), limits=Limits(max_audio_s=MAX_AUDIO_S))
    demo, url = launch(studio, "127.0.0.1", free_port(), queue_size=8, quiet=True)
    yield studio, demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return Client(served[2], verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("client")))


def _control(**changes) -> dict:
    return {**CONTROL, **changes}


def _reading(r: dict) -> None:
    assert READING_FIELDS <= set(r), r
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
    assert r["probability"] == r["probabilities"][r["category"]] == max(r["probabilities"].values())


def _provenance(files: list) -> dict:
    prov = [f for f in files if str(f).endswith(".provenance.json")]
    assert len(prov) == 1, files
    return json.loads(Path(prov[0]).read_text())


def _error(client, match_text: str, **kwargs) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(**kwargs)
    message = str(info.value)
    assert "\n" not in message.strip() and "Traceback" not in message
    assert match_text in message, message
    return message


def _job_message(job) -> str:
    with pytest.raises(JobError) as info:
        run(job, Models())
    return str(info.value)


# -- the page's shape ---------------------------------------------------------------------------
def test_every_event_is_named_and_the_generators_are_documented(served, client):
    _, demo, _ = served
    deps = demo.config["dependencies"]
    assert deps and all(d.get("api_name") for d in deps), [d.get("api_name") for d in deps]
    documented = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    for name in ("voice", "music", "face", "face_still", "scene", "read", "ladder", "parse_emotion"):
        assert f"/{name}" in documented, documented
    assert demo.config.get("analytics_enabled") is False
    # a bounded queue; one request at a time per model (Models lends each model to one job anyway)
    assert demo._queue.max_size == 8
    limits = {f.api_name: (f.concurrency_id, f.concurrency_limit) for f in demo.fns.values()}
    assert limits["voice"] == ("speech", 1) and limits["music"] == ("music", 1)
    assert limits["face"] == limits["face_still"] == ("face", 1) and limits["scene"] == ("scene", 1)


def test_the_live_line_shows_how_the_choice_parses(client):
    line = client.predict(**_control(emotion_mode="mixture", category="happy", category_b="surprised",
                                     balance=0.6), api_name="/parse_emotion")
    assert "(0.6*happy+0.4*surprised)@0.8" in line and "VAD" in line
    words = client.predict(**_control(emotion_mode="words", words="wistful"), api_name="/parse_emotion")
    assert "mapping" in words and "wistful" in words
    curve = client.predict(**_control(emotion_mode="curve", curve="sad@0.8 -> angry@0.8 over 3 s"),
                           api_name="/parse_emotion")
    assert "at 3 s" in curve
    bad = client.predict(**_control(emotion_mode="curve", curve="sad -> happy over 3 lightyears"),
                         api_name="/parse_emotion")
    assert "✗ unexpected 'lightyears'" in bad


# -- each medium ----------------------------------------------------------------------------------
def test_voice_converts_and_reads_against_the_source_and_equals_the_job(served, client, tmp_path):
    studio = served[0]
    audio, spectro, md, details, files, seed = client.predict(
        recording=handle_file(str(CLIP)), **_control(), seed=0, steps=10, api_name="/voice")
    wav, sr = sf.read(audio)
    assert sr == 22050 and abs(len(wav) / sr - 3.0) < 0.3
    assert Image.open(spectro).size[0] > 400
    assert seed == 0 and details["seed"] == 0 and details["emotion"]["spec"] == "angry@0.8"
    against, plain = details["readings"]["against_source"], details["readings"]["plain"]
    _reading(against)
    _reading(plain)
    assert against["reference"] == [CLIP.name]
    assert against["category"] == "angry", against  # the figure of record reads what was asked
    assert "against the source recording" in md and "plain reading" in md and "seed **0**" in md
    prov = _provenance(files)
    assert prov["seed"] == 0 and prov["emotion"]["spec"] == "angry@0.8"
    assert prov["readings"]["against_source"]["category"] == "angry"
    assert prov["studio"]["control"]["category"] == "angry"
    # the same inputs and seed through the job layer give the same bytes
    same = tmp_path / "job.wav"
    run(SpeechJob(CLIP, "angry@0.8", output=same, seed=0), studio.models)
    assert Path(audio).read_bytes() == same.read_bytes()
    wavs = [f for f in files if str(f).endswith(".wav")]
    assert Path(wavs[0]).read_bytes() == same.read_bytes()


def test_music_makes_a_midi_that_opens_with_audio_and_a_piano_roll(served, client, tmp_path):
    import pretty_midi

    audio, roll, md, details, files, seed = client.predict(
        **_control(category="happy"), bars=4, seed=3, tonic="D", fix_tempo=True, tempo=132, key_mode="major",
        other_fixed="", seed_midi=None, seed_mode="continue", with_audio=True, api_name="/music")
    mid = next(Path(f) for f in files if str(f).endswith(".mid"))
    pm = pretty_midi.PrettyMIDI(str(mid))
    assert pm.instruments and pm.get_end_time() > 1.0
    assert abs(pm.get_tempo_changes()[1][0] - 132) < 1
    assert details["key"] == "D major" and details["bars"] == 4
    a, sr = sf.read(audio)
    assert sr == 44100 and len(a) > sr
    assert Image.open(roll).size[0] > 400
    _reading(details["readings"]["midi"])
    _reading(details["readings"]["audio"])
    assert details["readings"]["audio"]["recognizer"] == "music-audio-v1"
    _reading(details["readings"]["audio_learned"])  # the second audio reader, beside the first
    assert details["readings"]["audio_learned"]["recognizer"] == "music-musicnn-v1"
    assert "the audio, learned reader" in md
    assert "the MIDI" in md and "seed **3**" in md
    same = tmp_path / "job.mid"
    run(MusicJob("happy@0.8", same, bars=4, seed=3, tonic="D", fixed={"tempo": 132.0, "major": 1.0}),
        served[0].models)
    assert mid.read_bytes() == same.read_bytes()
    # a seed MIDI is continued; a random seed is drawn and reported
    _, _, _, d2, files2, seed2 = client.predict(
        **_control(category="sad"), bars=4, seed=-1, tonic="auto", fix_tempo=False, tempo=100,
        key_mode="auto", other_fixed="density=3", seed_midi=handle_file(str(mid)), seed_mode="continue",
        with_audio=False, api_name="/music")
    assert seed2 >= 0 and d2["seed"] == seed2 and _provenance(files2)["options"]["fixed"] == {"density": 3.0}


def test_face_makes_an_mp4_with_both_streams_and_a_still(client, inputs, tmp_path):
    from apps.jobs import FaceJob, Models, SpeechJob, run
    from generators.face.video import probe_video

    # convert the speech first (a SpeechJob chained into the FaceJob), then animate it
    video, md, details, files, seed = client.predict(
        portrait=handle_file(str(PORTRAIT)), speech=handle_file(str(inputs["line"])), convert_first=True,
        **_control(category="happy", intensity=1.0), seed=0, api_name="/face")
    facts = probe_video(video)
    assert facts.video_codec == "h264" and facts.audio_codec == "aac"
    assert 3.0 < facts.duration < 5.0  # the conversion may change the speaking rate
    _reading(details["readings"]["video"])
    _reading(details["readings"]["voice_against_source"])
    assert details["readings"]["video"]["frames"] > 10
    _reading(details["readings"]["video_second"])
    assert details["readings"]["video_second"]["recognizer"] == "face-facex-v1"
    prov = _provenance(files)
    assert prov["job"] == "face" and prov["speech"]["emotion"]["spec"] == "happy@1"
    assert {"voice.wav", "face.mp4", "face.provenance.json"} == {Path(f).name for f in files}
    # the same job underneath: what the job layer (and so the CLI) makes from the same inputs and seed
    models = Models()
    same = run(FaceJob(PORTRAIT, "happy@1", tmp_path / "face.mp4", seed=0,
                       audio=SpeechJob(inputs["line"], "happy@1", seed=0)), models)
    assert Path(video).read_bytes() == same.files[0].read_bytes()
    still, md2, d2, files2, _ = client.predict(
        portrait=handle_file(str(PORTRAIT)), **_control(category="sad", intensity=1.0), seed=0,
        api_name="/face_still")
    assert Image.open(still).format == "PNG"
    png = run(FaceJob(PORTRAIT, "sad@1", tmp_path / "still.png", seed=0), models).files[0]
    assert np.array_equal(np.asarray(Image.open(still)), np.asarray(Image.open(png)))
    _reading(d2["readings"]["still"])
    assert "the still" in md2


def test_scene_mixes_voice_face_and_music_into_one_mp4(client, inputs):
    from generators.face.video import probe_video, read_video_audio

    video, md, details, files, seed = client.predict(
        recording=handle_file(str(inputs["line"])), portrait=handle_file(str(PORTRAIT)),
        **_control(emotion_mode="curve", curve="sad@0.8 -> angry@0.8 over 3 s"), music_level_db=-12, seed=1,
        api_name="/scene")
    facts = probe_video(video)
    assert facts.video_codec == "h264" and facts.audio_codec == "aac"
    assert abs(facts.duration - 4.0) < 0.3
    assert details["music_bars"] >= 2 and details["mix"]["music_level_db"] == -12
    for key in ("voice_against_source", "voice_plain", "face", "music"):
        _reading(details["readings"][key])
    names = {Path(f).name for f in files}
    assert {"scene.mp4", "voice.wav", "face.mp4", "cue.mid", "cue.wav", "scene.provenance.json"} <= names
    prov = _provenance(files)
    assert prov["face"]["speech"]["seed"] == 1 and prov["music"]["options"]["bars"] == details["music_bars"]
    # the music is under the voice: the scene's sound differs from the voice alone
    voice = next(Path(f) for f in files if Path(f).name == "voice.wav")
    v, _ = sf.read(voice, dtype="float32")
    mixed, _ = read_video_audio(video)
    n = min(len(v), len(mixed))
    assert np.abs(mixed[:n] - v[:n]).max() > 0.01


def test_read_gives_readings_with_the_named_fields(client, inputs):
    md, plot, details = client.predict(file=handle_file(str(CLIP)), reference_recordings=[handle_file(str(LONGER))],
                                       api_name="/read")
    assert {"speaker_normalised", "plain"} == set(details["readings"])
    for r in details["readings"].values():
        _reading(r)
    assert "speaker-normalised" in md and Image.open(plot).size[0] > 300
    # what `affect read` (the same ReadJob) reads from the same files
    from apps.jobs import Models, ReadJob, run

    models = Models()
    against = run(ReadJob([CLIP], reference=[LONGER]), models).data
    plain = run(ReadJob([CLIP]), models).data
    for mine, cli in ((details["readings"]["speaker_normalised"], against), (details["readings"]["plain"], plain)):
        assert mine["category"] == cli["category"]
        assert all(abs(mine["probabilities"][k] - v) < 1e-3 for k, v in cli["probabilities"].items())
    md, _, details = client.predict(file=handle_file(str(PORTRAIT)), reference_recordings=None, api_name="/read")
    assert details["kind"] == "image" and details["readings"]["plain"]["recognizer"] == "face-fer-v1"


def test_ladder_reads_each_intensity(client):
    out = client.predict(medium="music", recording=None, portrait=None, **_control(category="sad"), seed=0,
                         bars=2, api_name="/ladder")
    audios, stills, plot, md, details, files, seed = out[:5], out[5], out[6], out[7], out[8], out[9], out[10]
    assert all(a and Path(a).is_file() for a in audios) and not stills and seed == 0
    prov = _provenance(files)
    assert prov["job"] == "ladder" and [s["emotion"] for s in prov["steps"]][0] == "sad@0"
    assert [r["intensity"] for r in details["rows"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [r["emotion"] for r in details["rows"]][-1] == "sad@1"
    for reads in details["readings"]:
        _reading(reads["midi"])
    assert Image.open(plot).size[0] > 600 and "ladder of `sad@1`" in md and "P(sad) midi" in md
    p_sad = [r["P(sad) midi"] for r in details["rows"]]
    assert p_sad[-1] > p_sad[0], p_sad  # what the recognizer reads rises with the intensity asked


def test_the_emotion_can_come_from_a_reference(client):
    _, _, md, details, _, _ = client.predict(
        **_control(emotion_mode="reference", reference=handle_file(str(PORTRAIT)), intensity=1.0), bars=2,
        seed=0, tonic="auto", fix_tempo=False, tempo=100, key_mode="auto", other_fixed="", seed_midi=None,
        seed_mode="continue", with_audio=False, api_name="/music")
    ref = details["reference_reading"]
    _reading(ref)
    assert ref["recognizer"] == "face-fer-v1"
    assert ref["category"] in details["emotion"]["input"] or details["emotion"]["input"] == "neutral"
    assert "taken from the reference" in md


# -- bad input: the job layer's one line --------------------------------------------------------
def test_bad_inputs_come_back_as_the_job_layers_line(served, client, inputs):
    folder = str(inputs["folder"]) + "/"
    before = set(served[0].requests.iterdir())
    # a PNG as audio (the file names in the page's line are the user's, without the server's folders)
    msg = _error(client, "not_audio.wav", recording=handle_file(str(inputs["fake"])), **_control(), seed=0,
                 steps=10, api_name="/voice")
    assert msg == _job_message(SpeechJob(inputs["fake"], "angry@0.8")).replace(folder, "")
    # an image without a face
    msg = _error(client, "no face found", portrait=handle_file(str(inputs["blank"])), **_control(), seed=0,
                 api_name="/face_still")
    assert msg == _job_message(FaceJob(inputs["blank"], "angry@0.8", inputs["folder"] / "x.png")).replace(folder, "")
    # an unknown emotion, as free words and in a curve
    msg = _error(client, "blorp", recording=handle_file(str(CLIP)), **_control(emotion_mode="words", words="blorp"),
                 seed=0, steps=10, api_name="/voice")
    assert msg == _job_message(SpeechJob(CLIP, "blorp@0.8"))
    msg = _error(client, "lightyears", recording=handle_file(str(CLIP)),
                 **_control(emotion_mode="curve", curve="sad -> happy over 3 lightyears"), seed=0, steps=10,
                 api_name="/voice")
    assert msg == _job_message(SpeechJob(CLIP, "sad -> happy over 3 lightyears"))
    # an over-long recording (this studio takes MAX_AUDIO_S)
    _error(client, f"the maximum is {MAX_AUDIO_S:g} s", recording=handle_file(str(inputs["long"])),
           **_control(), seed=0, steps=10, api_name="/voice")
    # an image larger than this studio takes
    wide = inputs["folder"] / "wide.png"
    Image.fromarray(np.zeros((8, 7000, 3), np.uint8)).save(wide)
    _error(client, "wide.png' is 7000x8 px; the studio takes up to 6000 px a side", portrait=handle_file(str(wide)),
           **_control(), seed=0, api_name="/face_still")
    # a ladder of neutral, a bad fixed element
    _error(client, "other than neutral", medium="music", recording=None, portrait=None,
           **_control(category="neutral"), seed=0, bars=2, api_name="/ladder")
    _error(client, "fixed elements take NAME=VALUE", **_control(), bars=2, seed=0, tonic="auto",
           fix_tempo=False, tempo=100, key_mode="auto", other_fixed="loudness=3", seed_midi=None,
           seed_mode="continue", with_audio=False, api_name="/music")
    # each refused request left its folder with its inputs only: refused before any work
    new = set(served[0].requests.iterdir()) - before
    assert len(new) >= 7
    assert all({p.name for p in folder.iterdir()} <= {"inputs"} for folder in new)


# -- two users at once ------------------------------------------------------------------------
def test_two_clients_at_once_are_both_served_into_their_own_folders(served, tmp_path):
    studio, _, url = served
    clients = [Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / f"c{i}"))
               for i in range(2)]
    jobs = [c.submit(recording=handle_file(str(CLIP)), **_control(category="sad", intensity=1.0), seed=5,
                     steps=10, api_name="/voice") for c in clients]
    results = [j.result(timeout=300) for j in jobs]
    requests = [r[3]["request"] for r in results]
    assert requests[0] != requests[1]
    for r, req in zip(results, requests):
        assert (studio.requests / req / "voice.wav").is_file()
        assert Path(r[0]).is_file()
    assert Path(results[0][0]).resolve() != Path(results[1][0]).resolve()
    assert Path(results[0][0]).read_bytes() == Path(results[1][0]).read_bytes()  # same seed, same voice
    # the Face tab's "Use the Voice tab's result" hands a result on by name too
    assert Path(clients[0].predict(handle_file(results[0][0]), api_name="/voice_to_face")).is_file()


# -- the command ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_with", ["SIGINT", "SIGTERM"])
def test_affect_studio_serves_on_loopback_prints_its_url_and_stops_on_ctrl_c(tmp_path, stop_with):
    """Ctrl-C stops it even when its shell started it with SIGINT ignored (as a background job
    is), and so does SIGTERM (a service manager's stop)."""
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    from apps.studio.job import free_port

    port = free_port()
    t0 = time.perf_counter()
    # -X faulthandler: should it not stop, SIGABRT makes it print every thread's stack (below)
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "apps.cli", "studio", "--port", str(port), "--root",
                             str(tmp_path / "root")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=60)
            if "serving on" in line:
                url = line.split("serving on ", 1)[1].split()[0]
        ready = time.perf_counter() - t0
        assert url == f"http://127.0.0.1:{port}/"
        config = json.loads(urllib.request.urlopen(url + "config", timeout=10).read())
        assert any(d.get("api_name") == "voice" for d in config["dependencies"])
        assert ready < 30, f"ready after {ready:.1f} s"  # models load on first use, not at start
        print(f"\naffect studio: ready to serve after {ready:.1f} s")
    finally:
        proc.send_signal(getattr(signal, stop_with))
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            time.sleep(0.5)
            told = []
            while not lines.empty():
                told.append(lines.get())
            pytest.fail(f"affect studio did not stop within 30 s of {stop_with}; its last output and its "
                        "threads' stacks:\n" + "".join(told[-80:]))
    assert rc == 0
    assert (tmp_path / "root" / "examples").is_dir() and not list((tmp_path / "root" / "requests").iterdir())


def test_affect_studio_refuses_a_busy_port_in_one_line(capsys):
    import socket

    from apps.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["studio", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"affect: error: port {port} on 127.0.0.1 is in use; choose another with --port "
                           "(0 picks a free one)")
    assert main(["studio", "--host", "example.org"]) == 2
    assert "--host must be an IP address" in capsys.readouterr().err
