"""``affect eval all``: every landed generator's closed loop, cross-modal agreement and transfer,
and one self-contained page (``report.html``) with every table and plot.

Generators come in as arguments (a dict medium -> callable), so evaluators never import one.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from conditioning.io import atomic_write
from evaluators.report import figure_png, html_page, html_table, render_section

#: The default sweep of ``affect eval all`` (sized for <= 15 minutes on a 2-core CPU).
ALL_SWEEP = {
    "music": {"emotions": ["happy", "sad", "angry", "calm", "fearful", "surprised"],
              "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "seeds": [0, 1], "num_bars": 8},
    "speech": {"emotions": ["angry", "happy", "fearful", "sad", "surprised"],
               "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "recordings": 4},
    "face": {"emotions": ["happy", "sad", "angry", "surprised"],
             "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "recordings": 1},
    "cross": {"specs": ["happy@1", "sad@1", "angry@1", "calm@1", "fearful@1", "surprised@1"]},
}


def _headline(report: dict) -> dict:
    """The per-medium figures the README's results table shows."""
    out = {"accuracy_at_1": report["accuracy_at_max_intensity"]["accuracy"],
           "intensity_spearman": {e: v["value"] for e, v in report["intensity_spearman"].items()},
           # each medium's own threshold (its issue's): 0.9 for music and speech, 0.8 for faces
           "intensity_spearman_pass": {e: v["pass"] for e, v in report["intensity_spearman"].items()},
           "guards": {k: {"value": g["value"], "pass": g["pass"]} for k, g in report["quality_guards"].items()},
           "recognizers": {r["name"]: r["accuracy_at_max_intensity"] for r in report.get("recognizers", [])}}
    if report.get("correlates"):
        out["correlates"] = {k: {"spearman": c["spearman_of_means"], "pass": c["pass"]}
                             for k, c in report["correlates"].items()}
    return out


def evaluate_all(out_dir: str | Path, generators: dict, sweep: dict | None = None,
                 voice: str | Path | None = None) -> dict:
    from evaluators.loop_cross import evaluate_cross_modal
    from evaluators.loop_music import evaluate_music
    from evaluators.loop_speech import evaluate_speech, real_recordings
    from evaluators.recognizers import load_recognizer

    sweep = sweep or ALL_SWEEP
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports, timing = {}, {}
    if "music" in generators:
        t = time.time()
        m = sweep["music"]
        reports["music"] = evaluate_music(generators["music"], out / "music", m["emotions"], m["intensities"],
                                          m["seeds"], m["num_bars"],
                                          audio_recognizers=[load_recognizer("music-audio-v1")])
        timing["music"] = time.time() - t
    recordings = []
    if "speech" in generators:
        t = time.time()
        s = sweep["speech"]
        recordings = real_recordings(s["recordings"])
        reports["speech"] = evaluate_speech(
            generators["speech"], out / "speech", recordings, s["emotions"], s["intensities"],
            [load_recognizer("speech-prosody-v1"), load_recognizer("speech-cues-v1")])
        timing["speech"] = time.time() - t
    if "face" in generators:
        from evaluators.loop_face import evaluate_face

        t = time.time()
        f = sweep["face"]
        clips = [c for c, _ in real_recordings() if "librivox" in str(c)][: f["recordings"]]
        reports["face"] = evaluate_face(lambda image, audio, sr, emotion, generator: generators["face"](
            audio, sr, emotion=emotion, generator=generator), out / "face", None, clips, f["emotions"],
            f["intensities"])
        timing["face"] = time.time() - t
    cross = None
    if len(generators) >= 2:
        t = time.time()
        voice = voice or (recordings[0][0] if recordings else real_recordings(1)[0][0])
        speech_dir = out / "speech" / "audio"
        voices = sorted(speech_dir.glob("00_*_1.wav")) + [r[0] for r in recordings[:2]]
        cross = evaluate_cross_modal(
            out, sweep["cross"]["specs"], voice, generators.get("speech"), generators.get("music"),
            load_recognizer("speech-prosody-v1"), load_recognizer("music-features-v1"),
            transfer_voices=voices, animate_face=generators.get("face"),
            face_recognizer=load_recognizer("face-fer-v1", medium="face") if "face" in generators else None)
        timing["cross"] = time.time() - t
    summary = {
        "media": {k: _headline(r) for k, r in reports.items()},
        "cross_modal": cross["summary"] if cross else None,
        "seconds": {k: round(v, 1) for k, v in timing.items()},
        "sweep": sweep,
        "not_landed": [m for m in ("speech", "music", "face") if m not in generators],
    }
    report = {"summary": summary, "cross_modal": cross,
              "reports": {k: f"{k}/report.json" for k in reports}}
    with atomic_write(out / "report.json", "w") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, default=float), "utf-8")
    with atomic_write(out / "report.html", "w") as tmp:
        Path(tmp).write_text(render_all_html(summary, reports, cross), "utf-8")
    return report


def _short(coords: dict) -> str:
    """'angry 0.78 + happy 0.22 (x0.99)' from a reading's coordinates: the two largest parts."""
    from conditioning import parse_emotion

    spec = parse_emotion(coords["spec"])
    if spec.is_neutral:
        return "neutral"
    parts = sorted(spec.weights.items(), key=lambda kv: -kv[1])[:2]
    return " + ".join(f"{k} {w:.2f}" for k, w in parts) + f" (x{spec.intensity:.2f})"


def _mark(ok: bool) -> str:
    return "<span class='pass'>pass</span>" if ok else "<span class='fail'>FAIL</span>"


def render_all_html(summary: dict, reports: dict, cross: dict | None) -> str:
    parts = ["<h1>AffectStudio: closed-loop report, every medium</h1>",
             f"<p>Time per part (s): {html.escape(json.dumps(summary['seconds']))}. Not landed yet: "
             f"{', '.join(summary['not_landed']) or 'none'}.</p>", "<h2>Summary</h2>",
             "<table><tr><th>medium</th><th>accuracy at intensity 1 (per recognizer)</th>"
             "<th>intensity Spearman per emotion (threshold: 0.9 music and speech, 0.8 faces)</th>"
             "<th>quality guards</th></tr>"]
    for medium, h in summary["media"].items():
        rec = "<br>".join(f"{html.escape(n)}: {a:.2f}" for n, a in h["recognizers"].items())
        sp = "<br>".join(f"{html.escape(e)}: {v:.2f} {_mark(h['intensity_spearman_pass'][e])}"
                         for e, v in h["intensity_spearman"].items())
        gd = "<br>".join(f"{html.escape(k)}: {g['value']:.3f} {_mark(g['pass'])}" for k, g in h["guards"].items())
        if h.get("correlates"):
            gd += "<br>" + "<br>".join(f"{html.escape(k)}: Spearman {c['spearman']:.2f} {_mark(c['pass'])}"
                                       for k, c in h["correlates"].items())
        parts.append(f"<tr><td>{medium}</td><td>{rec}</td><td>{sp}</td><td>{gd}</td></tr>")
    parts.append("</table>")
    if cross:
        parts += ["<h2>Cross-modal agreement</h2>",
                  "<p>Each spec is generated in every medium; each output is read back by its medium's "
                  "recognizer into the shared space. Distances: Euclidean, of VAD points.</p>",
                  html_table({k: (round(v, 3) if isinstance(v, float) else v) for k, v in cross["summary"].items()})]
        rows = "".join(
            f"<tr><td>{html.escape(r['spec']['spec'])}</td>"
            + "".join(f"<td>{html.escape(m)}: {html.escape(x['dominant'])} (VAD dist "
                      f"{r['to_spec'][m]['vad_distance']:.2f})</td>" for m, x in r["readings"].items())
            + "".join(f"<td>{html.escape(k)}: {v['vad_distance']:.2f}</td>" for k, v in r["between"].items())
            + "</tr>" for r in cross["rows"])
        parts.append(f"<table><tr><th>spec</th><th colspan='3'>readings and distances</th></tr>{rows}</table>")
        parts.append(_cross_figure(cross))
        if cross["transfers"]:
            parts.append("<h3>Transfer: the emotion read from a voice drives the music</h3>")
            parts.append("<table><tr><th>voice</th><th>voice read as</th><th>music read as</th><th>VAD distance</th></tr>"
                         + "".join(f"<tr><td>{html.escape(Path(t['voice']).name)}</td><td>{html.escape(_short(t['voice_reading']))}"
                                   f"</td><td>{html.escape(_short(t['music_reading']))}</td><td>{t['vad_distance']:.2f}</td></tr>"
                                   for t in cross["transfers"]) + "</table>")
    for medium, rep in reports.items():
        parts.append(f"<h2>{html.escape(medium)}</h2>")
        parts.append(render_section(rep, level=3))
    return html_page("AffectStudio report: all media", "\n".join(parts))


def _cross_figure(cross: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    markers = {"speech": "o", "music": "s", "face": "^"}
    for i, r in enumerate(cross["rows"]):
        c = f"C{i}"
        v = r["spec"]["vad"]
        ax.scatter([v[0]], [v[1]], marker="*", s=200, color=c, edgecolor="k", label=r["spec"]["spec"])
        for m, x in r["readings"].items():
            ax.scatter([x["vad"][0]], [x["vad"][1]], marker=markers.get(m, "x"), s=40, color=c)
            ax.plot([v[0], x["vad"][0]], [v[1], x["vad"][1]], color=c, alpha=0.4)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.axhline(0, color="0.85")
    ax.axvline(0, color="0.85")
    ax.legend(fontsize=6)
    ax.set_title("asked (stars) vs read: speech (circles), music (squares), face (triangles)")
    png = figure_png(fig)
    return f"<img alt='cross-modal readings' src='data:image/png;base64,{png}'>"
