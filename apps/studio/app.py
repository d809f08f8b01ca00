"""The studio's page: Gradio Blocks with one tab per thing a user makes (Voice, Music, Face,
Scene, Read, Intensity ladder), the same emotion control in each (``build_control``), and every
event named for ``gradio_client`` (the generating endpoints are public and documented on the
"Use via API" page; the page's own helpers are callable by name but undocumented).

``launch`` serves it on loopback by default, with a bounded queue, models loaded on first use and
shared, and per-request output folders under the studio's root.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

import apps.studio.emotion as emo
from apps.studio.handlers import LADDER, Limits, Studio

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data")
EXAMPLE_CLIPS = ("librivox/sense_and_sensibility_01_austen_64kb-0880.wav",   # 3.0 s
                 "librivox/sense_and_sensibility_01_austen_64kb-0930.wav",   # 3.3 s
                 "cards/005.wav")                                             # 3.5 s
#: a 4 s line cut from this one (the face and scene examples)
EXAMPLE_LINE = ("librivox/sense_and_sensibility_01_austen_64kb-0890.wav", 4.0, "line_4s.wav")
PORTRAIT = Path(__file__).resolve().parents[2] / "configs" / "render" / "portrait.jpg"
KEY_CHOICES = ("auto", "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
REFERENCE_TYPES = [".wav", ".flac", ".ogg", ".opus", ".mp3", ".mid", ".midi", ".png", ".jpg", ".jpeg",
                   ".webp", ".bmp", ".mp4", ".mov", ".mkv", ".webm"]
CSS = """
.emotion-line pre, .emotion-line pre code, .studio-summary pre, .studio-summary pre code {
    white-space: pre-wrap !important; word-break: break-word; font-size: 0.85em}
.studio-summary {min-height: 2em}
"""
INTRO = ("**AffectStudio**: one emotion space for voice, music and faces; the recognizers read every "
         "result back. Models load on first use and are shared by everyone using this studio.")


# -- bundled offline examples -------------------------------------------------------------------
def examples(root: Path) -> dict[str, list[str]]:
    """The offline examples, copied into the studio's folder (served from there): real recordings
    (LibriVox, public domain, from Debian's pocketsphinx-testdata), a 4 s line cut from one of
    them, and the bundled portrait. Missing sources are left out."""
    folder = root / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    clips, line, portraits = [], [], []
    for rel in EXAMPLE_CLIPS:
        src = SPEECH_DIR / rel
        if src.is_file():
            dst = folder / src.name
            if not dst.is_file():
                shutil.copyfile(src, dst)
            clips.append(str(dst))
    src = SPEECH_DIR / EXAMPLE_LINE[0]
    if src.is_file():
        dst = folder / EXAMPLE_LINE[2]
        if not dst.is_file():
            import soundfile as sf

            from conditioning.audio import save_audio

            wav, sr = sf.read(src, dtype="float32")
            save_audio(dst, wav[: int(EXAMPLE_LINE[1] * sr)], sr)
        line.append(str(dst))
    if PORTRAIT.is_file():
        dst = folder / PORTRAIT.name
        if not dst.is_file():
            shutil.copyfile(PORTRAIT, dst)
        portraits.append(str(dst))
    return {"clips": clips, "line": line, "portraits": portraits}


# -- the emotion control ------------------------------------------------------------------------
@dataclass
class EmotionControl:
    mode: gr.Radio
    category: gr.Dropdown
    category_b: gr.Dropdown
    balance: gr.Slider
    intensity: gr.Slider
    curve: gr.Textbox
    words: gr.Textbox
    reference: gr.File
    line: gr.Markdown

    @property
    def inputs(self) -> list:
        """In ``emotion.CONTROL_FIELDS`` order: what every endpoint takes."""
        return [self.mode, self.category, self.category_b, self.balance, self.intensity, self.curve,
                self.words, self.reference]


def _visibility(mode: str):
    return (gr.update(visible=mode in ("category", "mixture")), gr.update(visible=mode == "mixture"),
            gr.update(visible=mode == "mixture"), gr.update(visible=mode == "curve"),
            gr.update(visible=mode == "words"), gr.update(visible=mode == "reference"))


def build_control(prefix: str, studio: Studio, default_mode: str = "category", curves: bool = True,
                  intensity_info: str | None = None) -> EmotionControl:
    """The emotion control (the same in every tab): how the emotion is chosen, an intensity, a
    curve, free words, a reference to read it from, and a live line of how the choice parses."""
    d = emo.DEFAULT_CONTROL
    modes = [(emo.MODE_LABELS[m], m) for m in emo.MODES if curves or m != "curve"]
    from conditioning import CATEGORIES

    with gr.Group(elem_id=f"{prefix}-emotion"):
        mode = gr.Radio(modes, value=default_mode, label="Emotion", elem_id=f"{prefix}-emotion-mode")
        with gr.Row():
            category = gr.Dropdown(list(CATEGORIES), value=d["category"], label="Category",
                                   elem_id=f"{prefix}-category", visible=default_mode in ("category", "mixture"))
            category_b = gr.Dropdown(list(CATEGORIES), value=d["category_b"], label="Second category",
                                     elem_id=f"{prefix}-category-b", visible=default_mode == "mixture")
            balance = gr.Slider(0, 1, value=d["balance"], step=0.05, label="Balance (share of the first)",
                                elem_id=f"{prefix}-balance", visible=default_mode == "mixture")
        intensity = gr.Slider(0, 1.5, value=d["intensity"], step=0.05, label="Intensity",
                              info=intensity_info or "0 = neutral, 1 = full, up to 1.5 = exaggerated "
                              "(a curve carries its own; with a reference, 1 = as read)",
                              elem_id=f"{prefix}-intensity")
        curve = gr.Textbox(d["curve"], label="Curve", info="keyframes over time: 'sad@0.8 -> angry@0.8 "
                           "over 3 s', 'sad at 0 -> calm at 4 -> happy at 16 bars'",
                           elem_id=f"{prefix}-curve", visible=default_mode == "curve")
        words = gr.Textbox(d["words"], label="Free words", info="mapped to the vocabulary by a lexicon or "
                           "a text embedding; the mapping is shown below", elem_id=f"{prefix}-words",
                           visible=default_mode == "words")
        reference = gr.File(label="Reference: a clip, photo, MIDI file or video (the recognizer reads it)",
                            file_types=REFERENCE_TYPES, type="filepath", elem_id=f"{prefix}-reference",
                            visible=default_mode == "reference")
        first = {"category": f"{d['category']}@{emo.fmt(d['intensity'])}", "curve": d["curve"]}.get(
            default_mode, f"{d['category']}@{emo.fmt(d['intensity'])}")
        line = gr.Markdown("```\n" + "\n".join(emo.describe_lines(first)) + "\n```",
                           elem_id=f"{prefix}-emotion-line", elem_classes=["emotion-line"])
    control = EmotionControl(mode, category, category_b, balance, intensity, curve, words, reference, line)
    mode.change(_visibility, mode, [category, category_b, balance, curve, words, reference],
                api_name=f"{prefix}_emotion_mode", api_visibility="undocumented", queue=False,
                show_progress="hidden")
    gr.on([mode.change, category.change, category_b.change, balance.release, intensity.release,
           curve.change, words.change, reference.change],
          studio.parse_emotion, control.inputs, line,
          api_name="parse_emotion" if prefix == "voice" else f"{prefix}_parse_emotion",
          api_visibility="public" if prefix == "voice" else "undocumented",
          trigger_mode="always_last", concurrency_id="parse", concurrency_limit=2, show_progress="minimal")
    return control


def _seed_row(prefix: str):
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", info="-1 draws one; the seed used is shown",
                         elem_id=f"{prefix}-seed", minimum=-1)
    return seed


def _result_tail(prefix: str, what: str):
    """Beside every result: the summary with the readings, the seed used (reusable), the
    downloads (files + provenance JSON), the details as JSON."""
    summary = gr.Markdown(elem_id=f"{prefix}-summary", elem_classes=["studio-summary"])
    with gr.Row():
        used = gr.Number(None, label="Seed used", interactive=False, precision=0, elem_id=f"{prefix}-seed-used")
        reuse = gr.Button("Reuse this seed", size="sm", elem_id=f"{prefix}-reuse")
    files = gr.File(label=f"Downloads: {what} and the provenance record (JSON)", file_count="multiple",
                    interactive=False, elem_id=f"{prefix}-files")
    with gr.Accordion("Details (JSON)", open=False):
        details = gr.JSON(label="details", elem_id=f"{prefix}-details")
    return summary, used, reuse, files, details


def _ladder_visibility(medium: str):
    """The ladder's inputs and outputs for its medium: a recording or a portrait, audio or stills."""
    audio = medium in ("voice", "music")
    return (gr.update(visible=medium == "voice"), gr.update(visible=medium == "face"),
            gr.update(visible=medium == "music"), gr.update(visible=not audio),
            *[gr.update(visible=audio) for _ in LADDER])


def _on_run(button, fn, inputs, outputs, **kw) -> None:
    """``button`` runs ``fn``; its outputs are cleared first, so that a request that fails (its
    one line shown as a toast) is never seen beside the previous request's result."""
    button.click(lambda: [None] * len(outputs), None, outputs, queue=False, show_progress="hidden",
                 api_visibility="private").then(fn, inputs, outputs, **kw)


def _reuse(button, used, seed, prefix: str) -> None:
    button.click(lambda s: s, used, seed, api_name=f"{prefix}_reuse_seed", api_visibility="undocumented",
                 queue=False, show_progress="hidden")


def _examples(items: list, inputs: list, label: str, name: str) -> None:
    if items:
        gr.Examples(items, inputs, label=label, api_name=name, api_visibility="undocumented",
                    examples_per_page=6)


# -- the page -----------------------------------------------------------------------------------
def build(studio: Studio, queue_size: int = 16) -> gr.Blocks:
    ex = examples(studio.root)
    clips, lines, portraits = ex["clips"], ex["line"], ex["portraits"]
    portrait0 = portraits[0] if portraits else None
    with gr.Blocks(title="AffectStudio", delete_cache=(1800, int(studio.keep_s)),
                   analytics_enabled=False) as demo:
        gr.Markdown(INTRO + f" Limits: {studio.limits.describe()}.")
        with gr.Tabs():
            # -- Voice ---------------------------------------------------------------------
            with gr.Tab("Voice", id="voice", elem_id="tab-voice"):
                with gr.Row():
                    with gr.Column():
                        recording = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                             label="Recording (upload or record)", elem_id="voice-recording")
                        _examples([[c] for c in clips + lines], [recording], "Offline examples (LibriVox)",
                                  "voice_example")
                        vc = build_control("voice", studio)
                        with gr.Row():
                            seed = _seed_row("voice")
                            steps = gr.Slider(1, 50, value=10, step=1, label="Denoising steps",
                                              elem_id="voice-steps")
                        run_voice = gr.Button("Convert", variant="primary", elem_id="voice-run")
                    with gr.Column():
                        voice_out = gr.Audio(label="Converted", type="filepath", interactive=False,
                                             elem_id="voice-out")
                        spectro = gr.Image(label="Spectrograms: before / after", type="filepath",
                                           interactive=False, show_label=False, elem_id="voice-spectrograms")
                        summary, used, reuse, files, details = _result_tail("voice", "the wav")
                _on_run(run_voice, studio.voice, [recording, *vc.inputs, seed, steps],
                        [voice_out, spectro, summary, details, files, used], api_name="voice",
                        concurrency_id="speech", concurrency_limit=1)
                _reuse(reuse, used, seed, "voice")

            # -- Music ---------------------------------------------------------------------
            with gr.Tab("Music", id="music", elem_id="tab-music"):
                with gr.Row():
                    with gr.Column():
                        mc = build_control("music", studio)
                        with gr.Row():
                            bars = gr.Slider(1, studio.limits.max_bars, value=16, step=1, label="Bars (4/4)",
                                             elem_id="music-bars")
                            mseed = _seed_row("music")
                        with gr.Accordion("Fixed elements, key and a seed melody", open=False):
                            with gr.Row():
                                tonic = gr.Dropdown(list(KEY_CHOICES), value="auto", label="Tonic",
                                                    elem_id="music-tonic")
                                key_mode = gr.Radio(["auto", "major", "minor"], value="auto", label="Mode",
                                                    elem_id="music-mode")
                            with gr.Row():
                                fix_tempo = gr.Checkbox(False, label="Fix the tempo", elem_id="music-fix-tempo")
                                tempo = gr.Slider(40, 200, value=100, step=1, label="Tempo (BPM)",
                                                  elem_id="music-tempo")
                            other_fixed = gr.Textbox("", label="Other fixed elements",
                                                     info="NAME=VALUE, e.g. density=4 register=60",
                                                     elem_id="music-fixed")
                            with gr.Row():
                                seed_midi = gr.File(label="Seed MIDI (a melody to continue or re-harmonise)",
                                                    file_types=[".mid", ".midi"], type="filepath",
                                                    elem_id="music-seed-midi")
                                seed_mode = gr.Radio(["continue", "reharmonize"], value="continue",
                                                     label="Seed mode", elem_id="music-seed-mode")
                        with_audio = gr.Checkbox(True, label="Render audio (General MIDI soundfont)",
                                                 elem_id="music-with-audio")
                        run_music = gr.Button("Generate", variant="primary", elem_id="music-run")
                    with gr.Column():
                        music_out = gr.Audio(label="Audio", type="filepath", interactive=False, elem_id="music-out")
                        roll = gr.Image(label="Piano roll", type="filepath", interactive=False,
                                        show_label=False, elem_id="music-roll")
                        msummary, mused, mreuse, mfiles, mdetails = _result_tail("music", "the MIDI, the wav")
                _on_run(run_music, studio.music, [*mc.inputs, bars, mseed, tonic, fix_tempo, tempo, key_mode,
                                                  other_fixed, seed_midi, seed_mode, with_audio],
                        [music_out, roll, msummary, mdetails, mfiles, mused], api_name="music",
                        concurrency_id="music", concurrency_limit=1)
                _reuse(mreuse, mused, mseed, "music")

            # -- Face ----------------------------------------------------------------------
            with gr.Tab("Face", id="face", elem_id="tab-face"):
                with gr.Row():
                    with gr.Column():
                        portrait = gr.Image(portrait0, type="filepath", format="png", label="Portrait",
                                            sources=["upload", "clipboard"], elem_id="face-portrait")
                        speech = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                          label="Speech (upload, record, or the Voice tab's result)",
                                          elem_id="face-speech")
                        with gr.Row():
                            from_voice = gr.Button("Use the Voice tab's result", size="sm",
                                                   elem_id="face-from-voice")
                            convert_first = gr.Checkbox(False, label="Convert the speech to the emotion first",
                                                        elem_id="face-convert")
                        _examples([[p, c] for p in portraits for c in lines + clips[:1]], [portrait, speech],
                                  "Offline examples", "face_example")
                        fc = build_control("face", studio)
                        fseed = _seed_row("face")
                        with gr.Row():
                            run_face = gr.Button("Animate", variant="primary", elem_id="face-run")
                            run_still = gr.Button("Still of the expression (no speech)", elem_id="face-still-run")
                    with gr.Column():
                        face_out = gr.Video(label="Talking head", interactive=False, height=420,
                                            elem_id="face-out")
                        still_out = gr.Image(label="Still", type="filepath", interactive=False,
                                             elem_id="face-still")
                        fsummary, fused, freuse, ffiles, fdetails = _result_tail("face", "the mp4 (or png)")
                from_voice.click(lambda a: a, voice_out, speech, api_name="voice_to_face",
                                 api_visibility="undocumented", queue=False)
                _on_run(run_face, studio.face, [portrait, speech, convert_first, *fc.inputs, fseed],
                        [face_out, fsummary, fdetails, ffiles, fused], api_name="face",
                        concurrency_id="face", concurrency_limit=1)
                _on_run(run_still, studio.face_still, [portrait, *fc.inputs, fseed],
                        [still_out, fsummary, fdetails, ffiles, fused], api_name="face_still",
                        concurrency_id="face", concurrency_limit=1)
                _reuse(freuse, fused, fseed, "face")

            # -- Scene ---------------------------------------------------------------------
            with gr.Tab("Scene", id="scene", elem_id="tab-scene"):
                with gr.Row():
                    with gr.Column():
                        srec = gr.Audio(sources=["upload", "microphone"], type="filepath", label="The line",
                                        elem_id="scene-recording")
                        sportrait = gr.Image(portrait0, type="filepath", format="png", label="Portrait",
                                             sources=["upload", "clipboard"], elem_id="scene-portrait")
                        _examples([[c, p] for p in portraits for c in lines + clips[:1]], [srec, sportrait],
                                  "Offline examples", "scene_example")
                        sc = build_control("scene", studio)
                        with gr.Row():
                            level = gr.Slider(-40, 6, value=-14, step=1, label="Music under the voice (dB)",
                                              elem_id="scene-level")
                            sseed = _seed_row("scene")
                        run_scene = gr.Button("Make the scene", variant="primary", elem_id="scene-run")
                    with gr.Column():
                        scene_out = gr.Video(label="Scene: voice, face and music", interactive=False,
                                             height=420, elem_id="scene-out")
                        ssummary, sused, sreuse, sfiles, sdetails = _result_tail(
                            "scene", "the mp4, the voice, the face, the cue")
                _on_run(run_scene, studio.scene, [srec, sportrait, *sc.inputs, level, sseed],
                        [scene_out, ssummary, sdetails, sfiles, sused], api_name="scene",
                        concurrency_id="scene", concurrency_limit=1)
                _reuse(sreuse, sused, sseed, "scene")

            # -- Read ----------------------------------------------------------------------
            with gr.Tab("Read", id="read", elem_id="tab-read"):
                with gr.Row():
                    with gr.Column():
                        rfile = gr.File(label="A recording, MIDI file, photo or video", file_types=REFERENCE_TYPES,
                                        type="filepath", elem_id="read-file")
                        rref = gr.File(label="Optional: the same speaker's neutral recordings (for the "
                                       "speaker-normalised reading)", file_count="multiple",
                                       file_types=[".wav", ".flac", ".ogg", ".opus", ".mp3"], type="filepath",
                                       elem_id="read-reference")
                        _examples([[c] for c in clips[:2] + portraits], [rfile], "Offline examples", "read_example")
                        run_read = gr.Button("Read", variant="primary", elem_id="read-run")
                    with gr.Column():
                        rsummary = gr.Markdown(elem_id="read-summary", elem_classes=["studio-summary"])
                        rplot = gr.Image(label="Valence-arousal", type="filepath", interactive=False,
                                         show_label=False, elem_id="read-plot")
                        with gr.Accordion("Readings (JSON)", open=False):
                            rdetails = gr.JSON(label="readings", elem_id="read-details")
                _on_run(run_read, studio.read, [rfile, rref], [rsummary, rplot, rdetails], api_name="read",
                        concurrency_id="read", concurrency_limit=2)

            # -- Intensity ladder ----------------------------------------------------------
            with gr.Tab("Intensity ladder", id="ladder", elem_id="tab-ladder"):
                with gr.Row():
                    with gr.Column():
                        medium = gr.Radio([("Voice", "voice"), ("Music", "music"), ("Face (stills)", "face")],
                                          value="voice", label="Medium", elem_id="ladder-medium")
                        lrec = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording",
                                        elem_id="ladder-recording")
                        lportrait = gr.Image(portrait0, type="filepath", format="png", label="Portrait",
                                             sources=["upload", "clipboard"], elem_id="ladder-portrait",
                                             visible=False)
                        _examples([[c] for c in clips], [lrec], "Offline examples", "ladder_example")
                        lc = build_control("ladder", studio, curves=False,
                                           intensity_info="the ladder sets the intensity itself (0 to 1); "
                                           "with a reference this scales what was read")
                        with gr.Row():
                            lseed = _seed_row("ladder")
                            lbars = gr.Slider(1, 16, value=4, step=1, label="Bars (music)", elem_id="ladder-bars",
                                              visible=False)
                        run_ladder = gr.Button("Run the ladder", variant="primary", elem_id="ladder-run")
                    with gr.Column():
                        lplot = gr.Image(label="Asked vs read", type="filepath", interactive=False,
                                         show_label=False, elem_id="ladder-plot")
                        lsummary = gr.Markdown(elem_id="ladder-summary", elem_classes=["studio-summary"])
                with gr.Row():
                    laudios = [gr.Audio(label=f"intensity {i:g}", type="filepath", interactive=False,
                                        elem_id=f"ladder-out-{k}") for k, i in enumerate(LADDER)]
                lgallery = gr.Gallery(label="Stills (face)", columns=len(LADDER), elem_id="ladder-stills",
                                      visible=False)
                with gr.Row():
                    lused = gr.Number(None, label="Seed used", interactive=False, precision=0,
                                      elem_id="ladder-seed-used")
                    lreuse = gr.Button("Reuse this seed", size="sm", elem_id="ladder-reuse")
                lfiles = gr.File(label="Downloads: the five results, the plot and the provenance (JSON)",
                                 file_count="multiple", interactive=False, elem_id="ladder-files")
                with gr.Accordion("Details (JSON)", open=False):
                    ldetails = gr.JSON(label="details", elem_id="ladder-details")
                medium.change(_ladder_visibility, medium, [lrec, lportrait, lbars, lgallery, *laudios],
                              api_name="ladder_medium", api_visibility="undocumented", queue=False,
                              show_progress="hidden")
                _on_run(run_ladder, studio.ladder, [medium, lrec, lportrait, *lc.inputs, lseed, lbars],
                        [*laudios, lgallery, lplot, lsummary, ldetails, lfiles, lused],
                        api_name="ladder", concurrency_id="ladder", concurrency_limit=1)
                _reuse(lreuse, lused, lseed, "ladder")
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    return demo


def launch(studio: Studio | None = None, host: str = "127.0.0.1", port: int = 7860, queue_size: int = 16,
           quiet: bool = False) -> tuple[gr.Blocks, str]:
    """Build the page and serve it in a background thread; returns the app and its local URL. The
    pipelines' code is imported in the background meanwhile (``Studio.preimport``)."""
    import threading

    studio = studio or Studio()
    demo = build(studio, queue_size)
    studio.imported.clear()  # before the first request can arrive
    threading.Thread(target=studio.preimport, name="studio-preimport", daemon=True).start()
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, share=False,
                inbrowser=False, show_error=True, quiet=True,
                max_file_size=int(studio.limits.max_upload_mb * 1e6), allowed_paths=[str(studio.root)],
                css=CSS, ssr_mode=False, mcp_server=False, enable_monitoring=False, run_history=False,
                footer_links=["api", "settings"])
    url = demo.local_url or f"http://{host}:{port}/"
    if not quiet:
        print(f"affect studio: serving on {url} (Ctrl-C stops it); files under {studio.root}", flush=True)
    return demo, url


__all__ = ["EmotionControl", "Limits", "Studio", "build", "build_control", "examples", "launch"]
