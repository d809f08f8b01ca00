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
from evaluators.lanes import run_lanes, stoppable
from evaluators.report import (
    accuracy_text,
    figure_html,
    figure_png,
    guard_rows,
    html_page,
    html_rows,
    machine,
    mark,
    render_section,
    sweep_sentence,
)

#: The default sweep of ``affect eval all`` (sized for <= 15 minutes on a 2-core CPU). Every
#: medium makes at least 10 outputs per emotion at the top intensity, where the accuracy is read
#: (``top_*``: seeds or recordings run at the top intensity only); the intensity Spearman figures
#: take the full sweep (``seeds``, ``recordings``), the same at every intensity.
ALL_SWEEP = {
    "music": {"emotions": ["happy", "sad", "angry", "calm", "fearful", "surprised"],
              "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "seeds": [0, 1], "top_seeds": list(range(10)),
              "num_bars": 8},
    "speech": {"emotions": ["angry", "happy", "fearful", "sad", "surprised"],
               "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "recordings": 3, "top_recordings": 10},
    "face": {"emotions": ["happy", "sad", "angry", "surprised"],
             "intensities": [0.0, 0.25, 0.5, 0.75, 1.0], "recordings": 1, "top_recordings": 10,
             "top_max_seconds": 2.0, "every": 4},
    "cross": {"specs": ["happy@1", "sad@1", "angry@1", "calm@1", "fearful@1", "surprised@1"]},
}


def _headline(report: dict) -> dict:
    """The per-medium figures the README's results table shows."""
    acc = report["accuracy_at_max_intensity"]
    out = {"accuracy_at_1": acc["accuracy"], "n": acc["n"], "standard_error": acc.get("standard_error"),
           "reader": report.get("headline_reading", {}).get("name", report["recognizer"]["name"]),
           "reading": report.get("headline_reading", {}).get("reading"),
           "sweep": sweep_sentence(report),
           "agreement_at_top": report.get("agreement_at_top", {}),
           "readers": {r["name"]: {"accuracy": r["accuracy_at_max_intensity"], "n": r.get("n"),
                                   "standard_error": r.get("standard_error")}
                       for r in report.get("recognizers", [])},
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
                 voice: str | Path | None = None, parallel: bool = True) -> dict:
    """Every medium's loop, then the cross-modal part, into ``out_dir``.

    With ``parallel`` (the default), the media's loops run side by side in threads and the
    cross-modal part runs after them; every output is made with its own seeded generator, so the
    outputs do not depend on the order. A Ctrl-C stops every lane at its next generator call."""
    import threading

    from evaluators.loop_cross import evaluate_cross_modal
    from evaluators.loop_music import evaluate_music
    from evaluators.loop_speech import evaluate_speech, real_recordings
    from evaluators.recognizers import load_recognizer

    sweep = sweep or ALL_SWEEP
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    gens = {k: stoppable(g, stop) for k, g in generators.items()}
    lanes = {}
    if "music" in gens:
        m = sweep["music"]
        lanes["music"] = lambda: evaluate_music(
            gens["music"], out / "music", m["emotions"], m["intensities"], m["seeds"], m["num_bars"],
            audio_recognizers=[load_recognizer("music-audio-v1"), load_recognizer("music-musicnn-v1"),
                               load_recognizer("music-vgg-v1")],
            top_seeds=m.get("top_seeds"))
    recordings = []
    if "speech" in gens:
        s = sweep["speech"]
        every = real_recordings(max(s["recordings"], s.get("top_recordings", 0)))
        recordings = every[: s["recordings"]]
        lanes["speech"] = lambda: evaluate_speech(
            gens["speech"], out / "speech", recordings, s["emotions"], s["intensities"],
            [load_recognizer("speech-prosody-v1"), load_recognizer("speech-cues-v1")],
            top_recordings=every[s["recordings"]:])
    if "face" in gens:
        from evaluators.loop_face import evaluate_face

        f = sweep["face"]
        # the full sweep on the shortest LibriVox excerpt (3 s), then the other recordings at the top
        clips = sorted((c for c, _ in real_recordings()), key=lambda c: ("0880" not in str(c), str(c)))
        clips = clips[: max(f["recordings"], f.get("top_recordings", 0))]
        lanes["face"] = lambda: evaluate_face(
            lambda image, audio, sr, emotion, generator: gens["face"](audio, sr, emotion=emotion, generator=generator),
            out / "face", None, clips[: f["recordings"]], f["emotions"], f["intensities"],
            recognizers=[load_recognizer("face-fer-v1", medium="face"), load_recognizer("face-facex-v1", medium="face")],
            top_recordings=clips[f["recordings"]:], top_max_seconds=f.get("top_max_seconds"), every=f.get("every", 2))
    started = time.time()
    reports, timing = run_lanes(lanes, parallel, stop)
    cross = None
    if len(gens) >= 2:
        t = time.time()
        if voice is None:  # the shortest LibriVox excerpt of the speech sweep (the loop's time)
            import soundfile as sf

            pool = [r[0] for r in (recordings or real_recordings(1))]
            books = [c for c in pool if "librivox" in str(c)] or pool
            voice = min(books, key=lambda c: sf.info(str(c)).duration)
        speech_dir = out / "speech" / "audio"
        voices = sorted(speech_dir.glob("00_*_1.wav")) + [r[0] for r in recordings[:2]]
        cross = evaluate_cross_modal(
            out, sweep["cross"]["specs"], voice, gens.get("speech"), gens.get("music"),
            load_recognizer("speech-prosody-v1"), load_recognizer("music-features-v1"),
            transfer_voices=voices, animate_face=gens.get("face"),
            face_recognizer=load_recognizer("face-fer-v1", medium="face") if "face" in gens else None,
            parallel=parallel)
        timing["cross"] = time.time() - t
    wall = time.time() - started
    reports = {k: reports[k] for k in ("music", "speech", "face") if k in reports}
    summary = {
        "media": {k: _headline(r) for k, r in reports.items()},
        "cross_modal": cross["summary"] if cross else None,
        "seconds": {k: round(v, 1) for k, v in timing.items()},
        "wall_seconds": round(wall, 1),
        "side_by_side": bool(parallel and len(lanes) > 1),
        "machine": machine(),
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


def verdict(medium: str, h: dict) -> str:
    """One line: what the medium's headline reader found, the other readers, intensity, guards."""
    a = {"accuracy": h["accuracy_at_1"], "n": h["n"], "standard_error": h["standard_error"]}
    others = [f"{n} {x['accuracy']:.2f}" for n, x in h["readers"].items()
              if n != h["reader"] and not n.endswith("+neutral-conversion") and x["n"]]
    sp = h["intensity_spearman_pass"]
    guards = [g["pass"] for g in h["guards"].values()]
    line = (f"{medium.capitalize()}: {h['reader']} names the asked emotion for {accuracy_text(a)} of the "
            f"outputs at the top intensity")
    if others:
        line += f" (the other readers: {', '.join(others)})"
    line += (f"; the reading rises with intensity for {sum(sp.values())} of {len(sp)} emotions; "
             f"{sum(guards)} of {len(guards)} quality guards pass")
    low = [f"{pair} agree on {x['rate']:.0%}" for pair, x in h.get("agreement_at_top", {}).items()
           if x["rate"] < 0.5]
    if low:
        line += f"; the readers disagree ({'; '.join(low)})"
    return line + "."


def render_all_html(summary: dict, reports: dict, cross: dict | None) -> str:
    secs = summary["seconds"]
    total = summary.get("wall_seconds", sum(secs.values()))

    def took(v: float) -> str:
        return f"{v / 60:.1f} min" if v >= 90 else f"{v:.0f} s"

    media = [k for k in secs if k != "cross"]
    if summary.get("side_by_side"):
        timing = ("the media's loops side by side on its cores, " + ", ".join(f"{k} {took(secs[k])}" for k in media)
                  + (f"; then cross-modal {took(secs['cross'])}" if "cross" in secs else ""))
    else:
        timing = ", ".join(f"{k} {took(v)}" for k, v in secs.items())
    parts = ["<h1>AffectStudio: closed-loop report, every medium</h1>",
             "<ul class='verdicts'>" + "".join(f"<li>{html.escape(verdict(m, h))}</li>"
                                               for m, h in summary["media"].items()) + "</ul>",
             f"<p>The sweep took {total / 60:.1f} minutes, wall clock, on {html.escape(summary.get('machine', 'this machine'))} "
             f"({html.escape(timing)}). Not landed yet: {', '.join(summary['not_landed']) or 'none'}.</p>",
             "<h2>What each medium ran</h2><ul>"
             + "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(h['sweep'])}</li>" for m, h in summary["media"].items())
             + "</ul>",
             "<h2>Summary</h2>"]
    rows = []
    for medium, h in summary["media"].items():
        readers = "; ".join(f"{n}: {accuracy_text(x) if x['n'] else format(x['accuracy'], '.2f')}"
                            for n, x in h["readers"].items())
        sp = "; ".join(f"{e} {v:.2f}" if v == v else f"{e} undefined" for e, v in h["intensity_spearman"].items())
        rows.append([medium, h["reader"], readers, sp])
    parts.append(html_rows(["medium", "reader of record", "accuracy at the top intensity \u00b1 standard "
                            "error, every reader", "intensity Spearman per emotion (reader of record; "
                            "threshold 0.9 music and speech, 0.8 faces)"], rows))
    guards = [row for medium, rep in reports.items() for row in guard_rows(rep, medium)]
    for medium, h in summary["media"].items():
        for k, c in (h.get("correlates") or {}).items():
            guards.append([medium, f"acoustic correlate {k} (Spearman vs intensity)", c["spearman"],
                           "at least 0.9", mark(c["pass"])])
    parts += ["<h2>Quality guards</h2>", html_rows(["medium", "guard", "value", "accepted", "pass"], guards)]
    if cross:
        c = cross["summary"]
        parts += ["<h2>Cross-modal agreement</h2>",
                  "<p>Each spec is generated in every medium; each output is read back by its medium's "
                  "reader into the shared space (distances: Euclidean, between valence-arousal-dominance "
                  "points); speech is read against its source recording, the figure of record for a "
                  f"conversion. The dominant category read matches the spec's for {c['dominant_match_rate']:.0%} "
                  f"of the readings; the mean distance of a reading to its spec is "
                  f"{c['mean_vad_distance_to_spec']:.2f}, and between two media's readings of one spec "
                  f"{c['mean_vad_distance_between_media']:.2f}.</p>"]
        media = list(cross["rows"][0]["readings"]) if cross["rows"] else []
        pairs = list(cross["rows"][0]["between"]) if cross["rows"] else []
        parts.append(html_rows(
            ["spec"] + [f"{m} read as (distance to spec)" for m in media] + [f"{p} distance" for p in pairs],
            [[r["spec"]["spec"]] + [f"{r['readings'][m]['dominant']} ({r['to_spec'][m]['vad_distance']:.2f})"
                                     for m in media] + [r["between"][p]["vad_distance"] for p in pairs]
             for r in cross["rows"]]))
        parts.append(_cross_figure(cross))
        if cross["transfers"]:
            parts.append("<h3>Transfer: the emotion read from a voice drives the music</h3>")
            parts.append(f"<p>Same dominant category for {c['transfer_dominant_match_rate']:.0%} of the "
                         f"{len(cross['transfers'])} voices. A voice given for transfer has no neutral "
                         "reference, so it is read plainly (the known limit of the speech reader).</p>")
            parts.append(html_rows(["voice", "voice read as", "music read as", "distance"],
                                   [[Path(t["voice"]).name, _short(t["voice_reading"]), _short(t["music_reading"]),
                                     t["vad_distance"]] for t in cross["transfers"]]))
    for medium, rep in reports.items():
        parts.append(f"<h2>{html.escape(medium.capitalize())}</h2>")
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
    return figure_html("Cross-modal readings", figure_png(fig),
                       "Each star is a spec's anchor in the valence-arousal plane; each marker is one medium's "
                       "output of that spec as its reader reads it (speech circles, music squares, face "
                       "triangles), joined to its star.")
