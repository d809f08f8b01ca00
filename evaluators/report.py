"""The closed loops' report writer, shared by every medium's loop: ``report.json`` and a
self-contained ``report.html`` (the figures inline as PNG, the tables as HTML).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from conditioning import ANCHORS, parse_emotion
from conditioning.io import atomic_write


def figure_png(fig) -> str:
    """A matplotlib figure as a base64 PNG (for an ``<img src="data:image/png;base64,...">``); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def write_report(out: Path, report: dict, render=None) -> dict:
    """``report.json`` and ``report.html`` (``render(report)``, by default ``render_html``) into
    ``out``, each written atomically; returns ``report``."""
    with atomic_write(out / "report.json", "w") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2), "utf-8")
    with atomic_write(out / "report.html", "w") as tmp:
        Path(tmp).write_text((render or render_html)(report), "utf-8")
    return report


_STYLE = ("<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
          ".pass{color:#186a18}.fail{color:#b00020;font-weight:bold}img{max-width:100%}</style>")


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"{_STYLE}</head><body>\n{body}\n</body></html>")


def html_table(d: dict) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
        for k, v in d.items()
    )
    return f"<table>{cells}</table>"


def render_html(report: dict) -> str:
    """A self-contained page: the figures inline as PNG, the tables as HTML."""
    medium = report.get("medium", "music")
    return html_page(f"AffectStudio report: {medium}",
                     f"<h1>Closed-loop report: {html.escape(medium)}</h1>\n" + render_section(report))


def render_section(report: dict, level: int = 2) -> str:
    """One medium's report as an HTML fragment (headings from ``<h{level}>``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, figs = report["rows"], []
    acc = report["accuracy_at_max_intensity"]
    conf = np.array(acc["confusion"])
    cats = acc["categories"]
    used = [i for i in range(len(cats)) if conf[i].sum() or conf[:, i].sum()]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(conf[np.ix_(used, used)], cmap="Blues")
    ax.set_xticks(range(len(used)), [cats[i] for i in used], rotation=45, ha="right")
    ax.set_yticks(range(len(used)), [cats[i] for i in used])
    ax.set_xlabel("read")
    ax.set_ylabel("asked")
    for a, i in enumerate(used):
        for b, j in enumerate(used):
            ax.text(b, a, int(conf[i, j]), ha="center", va="center")
    ax.set_title(f"confusion at the top intensity (accuracy {acc['accuracy']:.2f})")
    figs.append(("Confusion matrix", figure_png(fig)))

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for emotion in report["sweep"]["emotions"]:
        xs = report["sweep"]["intensities"]
        ys = [
            np.mean(
                [r["p_target"] for r in rows if r["emotion"] == emotion and r["intensity"] == x]
            )
            for x in xs
        ]
        ax.plot(xs, ys, marker="o", label=emotion)
    ax.set_xlabel("intensity asked")
    ax.set_ylabel("recognizer P(target)")
    ax.legend(fontsize=7)
    ax.set_title("intensity response per emotion")
    figs.append(("Intensity-response curves", figure_png(fig)))

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for i, emotion in enumerate(report["sweep"]["emotions"]):
        color = f"C{i}"
        sel = [r for r in rows if r["emotion"] == emotion]
        ax.scatter(
            [r["valence"] for r in sel],
            [r["arousal"] for r in sel],
            s=12,
            color=color,
            alpha=0.6,
            label=emotion,
        )
        base = parse_emotion(emotion).dominant
        ax.scatter(
            [ANCHORS[base].valence],
            [ANCHORS[base].arousal],
            marker="*",
            s=160,
            color=color,
            edgecolor="k",
        )
    ax.axhline(0, color="0.8")
    ax.axvline(0, color="0.8")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.legend(fontsize=7)
    ax.set_title("read (dots) vs asked anchors (stars)")
    figs.append(("Valence-arousal: asked vs read", figure_png(fig)))

    correlates = report.get("correlates") or {}
    if correlates:
        names = sorted({k.split(":")[1] for k in correlates})
        fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3))
        xs = report["sweep"]["intensities"]
        for ax, name in zip(np.atleast_1d(axes), names):
            for key, c in correlates.items():
                emo, corr = key.split(":")
                if corr == name:
                    ax.plot(xs, c["means"], marker="o", label=f"{emo} ({c['spearman_of_means']:.2f})")
            ax.set_xlabel("intensity asked")
            ax.set_title(name, fontsize=9)
            ax.legend(fontsize=6)
        figs.append(("Acoustic correlates vs intensity (mean over recordings; Spearman)",
                     figure_png(fig)))

    guards = report["quality_guards"]
    fig, axes = plt.subplots(1, len(guards), figsize=(3 * len(guards), 2.6))
    for ax, (name, g) in zip(np.atleast_1d(axes), guards.items()):
        lo, hi = g["bounds"]
        ax.axhspan(lo, hi if hi > lo else lo + 1e-3, color="tab:green", alpha=0.25)
        ax.bar([0], [g["value"]], color="tab:green" if g["pass"] else "tab:red")
        ax.set_xticks([])
        ax.set_title(f"{name}\n{g['value']:.3f} ({'pass' if g['pass'] else 'FAIL'})", fontsize=9)
    figs.append(("Quality guards (band = threshold)", figure_png(fig)))

    table = html_table
    h = f"h{level}"
    parts = [
        f"<p>Sweep: {html.escape(json.dumps(report['sweep']))}; main recognizer "
        f"{html.escape(report['recognizer']['name'])}.</p>",
        f"<{h}>Accuracy at the top intensity: {acc['accuracy']:.2f} (n={acc['n']})</{h}>",
        f"<{h}>Intensity monotonicity (Spearman, recognizer P(target); threshold "
        f"{report.get('spearman_threshold', 0.9):g})</{h}>",
        table(
            {
                e: f"{v['value']:.2f} {'pass' if v['pass'] else 'FAIL'}"
                for e, v in report["intensity_spearman"].items()
            }
        ),
        f"<{h}>Quality</{h}>",
        table({k: round(v, 4) for k, v in report["quality"].items()}),
    ]
    if report.get("recognizers"):
        parts += [f"<{h}>Every recognizer (independent judges)</{h}>", table({
            r["name"]: f"accuracy at the top intensity {r['accuracy_at_max_intensity']:.2f}; "
            "intensity Spearman " + ", ".join(f"{e} {v:.2f}" for e, v in r["intensity_spearman"].items())
            + f"; licence {r['licence']}" for r in report["recognizers"]})]
    side = report.get("readings_side_by_side")
    if side:
        norm = report["speaker_normalised"]
        na = norm["accuracy_at_max_intensity"]
        conf = np.array(na["confusion"])
        read = {cats[i]: ", ".join(f"{cats[j]} {conf[i, j]}" for j in np.flatnonzero(conf[i]))
                for i in range(len(cats)) if conf[i].sum()}
        parts += [f"<{h}>Plain vs speaker-normalised reading ({html.escape(norm['name'])}; reference: "
                  f"{html.escape(norm['reference'])})</{h}>",
                  table({"accuracy at the top intensity": "plain {plain:.2f} / speaker-normalised "
                         "{speaker_normalised:.2f} / channel-matched {channel_matched:.2f}".format(
                             **side["accuracy_at_max_intensity"]),
                         **{f"Spearman {e}": f"plain {v['plain']:.2f} / speaker-normalised "
                            f"{v['speaker_normalised']:.2f} / channel-matched {v['channel_matched']:.2f}"
                            for e, v in side["intensity_spearman"].items()}}),
                  f"<p>Channel-matched: the reference is {html.escape(report['channel_matched']['reference'])}."
                  "</p>",
                  f"<{h}>Speaker-normalised reading at the top intensity: asked -> read</{h}>", table(read)]
    panel = report.get("portrait_panel")
    if panel:
        parts += [f"<{h}>Portrait panel: {panel['portraits']} real faces holding each emotion (stills)</{h}>",
                  f"<p>Relaxed faces (intensity 0) read as: {html.escape(json.dumps(panel['relaxed_read_as']))}; "
                  f"{len(panel['skipped'])} portraits without a face found.</p>",
                  table({e: f"read as {e} on {v['target_top_at_top']:.2f} of portraits at the top intensity "
                         f"({', '.join(f'{k} {n}' for k, n in v['read_at_top'].items())}); P(target) means "
                         + " / ".join(f"{x:.2f}" for x in v["p_target_means"])
                         + f", Spearman {v['spearman_of_means']:.2f}; rising on {v['portraits_rising']:.2f} "
                         "of portraits" for e, v in panel["emotions"].items()})]
        if panel.get("sheet"):  # a file beside the page
            cols = ", ".join(panel["sheet_columns"])
            parts.append(f"<p>Contact sheet (columns: {html.escape(cols)})</p>"
                         f"<img alt='portrait panel' src='{html.escape(panel['sheet'])}'>")
    if correlates:
        parts += [f"<{h}>Acoustic correlates the literature fixes (Spearman of means >= 0.9)</{h}>",
                  table({k: f"{c['direction']}: {c['change_at_top']:+.2f} at the top, Spearman "
                         f"{c['spearman_of_means']:.2f} {'pass' if c['pass'] else 'FAIL'}"
                         for k, c in correlates.items()})]
    for title, png in figs:
        parts.append(
            f"<{h}>{html.escape(title)}</{h}><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'>"
        )
    return "\n".join(parts)
