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


def machine() -> str:
    """The CPU's model name and core count (Linux), for the timings a page states."""
    import os

    name = "an unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def figure_png(fig) -> str:
    """A matplotlib figure as a base64 PNG (for an ``<img src="data:image/png;base64,...">``); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def reader_agreement(rows: list[dict], fields: dict[str, str]) -> dict:
    """How often each pair of readers names the same category on the same outputs:
    ``{"a / b": {"agree": k, "n": n, "rate": k / n}}`` over the rows where both read something
    (``fields``: reader name -> the row field holding its category)."""
    names = list(fields)
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = [r for r in rows if r.get(fields[a]) and r.get(fields[b])]
            if both:
                k = sum(r[fields[a]] == r[fields[b]] for r in both)
                out[f"{a} / {b}"] = {"agree": k, "n": len(both), "rate": k / len(both)}
    return out


def write_report(out: Path, report: dict, render=None) -> dict:
    """``report.json`` and ``report.html`` (``render(report)``, by default ``render_html``) into
    ``out``, each written atomically; returns ``report``."""
    with atomic_write(out / "report.json", "w") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2), "utf-8")
    with atomic_write(out / "report.html", "w") as tmp:
        Path(tmp).write_text((render or render_html)(report), "utf-8")
    return report


_STYLE = ("<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
          "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
          "vertical-align:top}th{background:#f3f3f3;text-align:left}figure{margin:1em 0}"
          "figcaption{font-size:90%;color:#333;max-width:760px}ul.verdicts li{margin:.3em 0}"
          ".pass{color:#186a18}.fail{color:#b00020;font-weight:bold}img{max-width:100%}</style>")


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"{_STYLE}</head><body>\n{body}\n</body></html>")


def _cell(v) -> str:
    """A table cell's text: numbers rounded, lists and mappings as plain words (never JSON)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v != v:
        return "undefined"  # NaN: a Spearman of a flat line, say
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.3f}".rstrip("0").rstrip(".")
    if isinstance(v, dict):
        return "; ".join(f"{k} {_cell(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v)
    return str(v)


def html_table(d: dict, header: tuple[str, str] | None = None) -> str:
    """A two-column table of ``d`` (name -> value), values written as words and rounded numbers."""
    head = f"<tr><th>{html.escape(header[0])}</th><th>{html.escape(header[1])}</th></tr>" if header else ""
    cells = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_cell(v))}</td></tr>"
                    for k, v in d.items())
    return f"<table>{head}{cells}</table>"


def html_rows(header: list[str], rows: list[list]) -> str:
    """A table with a header row; every row has as many cells as the header."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Html) else html.escape(_cell(c))}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Html(str):
    """Text already escaped (a pass/FAIL mark)."""


def mark(ok: bool) -> _Html:
    return _Html("<span class='pass'>pass</span>" if ok else "<span class='fail'>FAIL</span>")


def figure_html(title: str, png: str, caption: str) -> str:
    """A figure with its caption under it."""
    return (f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
            f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}</figcaption></figure>")


def accuracy_text(a: dict) -> str:
    """'0.80 +- 0.06 (n = 50)': an accuracy with its binomial standard error and sample size."""
    se = a.get("standard_error")
    if se is None and a.get("n"):
        p = a["accuracy"]
        se = float(np.sqrt(p * (1 - p) / a["n"]))
    return f"{a['accuracy']:.2f} \u00b1 {se:.2f} (n = {a['n']})" if a.get("n") else "no outputs read"


def _words(xs) -> str:
    return ", ".join(_cell(x) for x in xs)


def sweep_sentence(report: dict) -> str:
    """What a loop ran, as a sentence."""
    sw, medium = report["sweep"], report.get("medium", "music")
    emo = f"{len(sw['emotions'])} emotions ({_words(sw['emotions'])})"
    inten = f"intensities {_words(sw['intensities'])}"
    if medium == "music" and sw.get("source"):
        return f"{sw['pieces']} MIDI files from the folder {Path(sw['source']).name}, labelled {emo}."
    if medium == "music":
        extra = len(sw.get("top_seeds", sw["seeds"])) - len(sw["seeds"])
        more = f", plus {extra} more seed{'s' if extra != 1 else ''} at the top intensity" if extra > 0 else ""
        seeds = f"{len(sw['seeds'])} seed{'s' if len(sw['seeds']) != 1 else ''}"
        return f"{emo} x {inten} x {seeds}{more}; {sw['num_bars']} bars a piece: {sw['pieces']} pieces."
    recs = sw["recordings"]
    extra = sw.get("top_only_recordings", 0)
    full = len(recs) - extra
    what = {"speech": "conversions", "face": "videos"}.get(medium, "outputs")
    n = sw.get("conversions", sw.get("videos"))
    more = f", plus {extra} more at the top intensity only" if extra else ""
    return (f"{emo} x {inten} on {full} real recording{'s' if full != 1 else ''}{more} "
            f"({_words(Path(r).name for r in recs)}): {n} {what}.")


GUARD_NAMES = {
    "pitch_class_entropy": "pitch-class entropy", "scale_consistency": "scale consistency",
    "empty_bars": "empty bars", "wer_increase_points": "word error increase (points)",
    "speaker_cosine_min": "speaker cosine, lowest", "max_peak_db": "peak level (dBFS)",
    "lipsync_pearson_mean": "lip sync (mouth opening vs loudness, Pearson)",
    "ssim_outside_min": "SSIM outside the face, lowest", "blinks_per_minute": "blinks per minute",
    "duration_error_max_s": "video vs audio length, largest error (s)",
}


def guard_rows(report: dict, medium: str | None = None) -> list[list]:
    """[medium?, guard, value, accepted range, pass] per quality guard."""
    out = []
    for name, g in report["quality_guards"].items():
        lo, hi = g["bounds"]
        rng = f"{_cell(lo)} to {_cell(hi)}" if lo != hi else f"exactly {_cell(lo)}"
        if lo <= -100:
            rng = f"at most {_cell(hi)}"
        row = [GUARD_NAMES.get(name, name.replace("_", " ")), g["value"], rng, mark(g["pass"])]
        out.append(([medium] if medium else []) + row)
    return out


def readers_html(report: dict, h: str) -> str:
    """Every reader of the medium side by side, and how often they agree."""
    recs = report.get("recognizers") or []
    if not recs:
        return ""
    rows = []
    for r in recs:
        a = {"accuracy": r["accuracy_at_max_intensity"], "n": r.get("n"), "standard_error": r.get("standard_error")}
        sp = r.get("intensity_spearman") or {}
        rows.append([r["name"] + (f" ({r['reading']})" if r.get("reading") else "")
                     + (f", reads {r['reads']}" if r.get("reads") else ""),
                     accuracy_text(a) if a["n"] else f"{a['accuracy']:.2f}",
                     "; ".join(f"{e} {v:.2f}" for e, v in sp.items() if v is not None), r["licence"]])
    parts = [f"<{h}>Every reader, side by side</{h}>",
             html_rows(["reader", "accuracy at the top intensity \u00b1 standard error",
                        "intensity Spearman per emotion", "licence"], rows)]
    agree = report.get("agreement_at_top") or {}
    if agree:
        lines = []
        for pair, x in agree.items():
            verdict = ("they disagree more often than they agree" if x["rate"] < 0.5
                       else "they mostly agree")
            lines.append(f"{pair}: the same category on {x['agree']} of {x['n']} outputs ({x['rate']:.0%}); {verdict}.")
        parts.append("<p>At the top intensity: " + " ".join(html.escape(x) for x in lines)
                     + " Where readers disagree, both readings are shown; neither is preferred.</p>")
    return "\n".join(parts)


def render_html(report: dict) -> str:
    """A self-contained page: the figures inline as PNG, the tables as HTML."""
    medium = report.get("medium", "music")
    return html_page(f"AffectStudio report: {medium}",
                     f"<h1>Closed-loop report: {html.escape(medium)}</h1>\n" + render_section(report))


def render_section(report: dict, level: int = 2) -> str:
    """One medium's report as an HTML fragment (headings from ``<h{level}>``): what was run, the
    headline accuracy with its standard error, every reader side by side, the intensity figures,
    the guards, and the plots, each with axes and a caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, figs = report["rows"], []
    suffix = report.get("row_suffix", "")  # speech: the rows' fields of the headline reading
    head = report.get("headline_reading", {})
    reader = head.get("name", report["recognizer"]["name"])
    reading = f" ({head['reading']})" if head.get("reading") else ""
    acc = report["accuracy_at_max_intensity"]
    top = max(report["sweep"]["intensities"])
    conf = np.array(acc["confusion"])
    cats = acc["categories"]
    used = [i for i in range(len(cats)) if conf[i].sum() or conf[:, i].sum()]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(conf[np.ix_(used, used)], cmap="Blues")
    ax.set_xticks(range(len(used)), [cats[i] for i in used], rotation=45, ha="right")
    ax.set_yticks(range(len(used)), [cats[i] for i in used])
    ax.set_xlabel("category read")
    ax.set_ylabel("category asked")
    for a, i in enumerate(used):
        for b, j in enumerate(used):
            ax.text(b, a, int(conf[i, j]), ha="center", va="center")
    figs.append(("Confusion at the top intensity", figure_png(fig),
                 f"Outputs at intensity {top:g}, asked (rows) against read (columns) by {reader}; "
                 f"accuracy {accuracy_text(acc)}."))

    emotions = report["sweep"]["emotions"]
    swept = [r for r in rows if not r.get("top_only") and f"p_target{suffix}" in r]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    xs = report["sweep"]["intensities"]
    for emotion in emotions:
        ys = [np.mean([r[f"p_target{suffix}"] for r in swept if r["emotion"] == emotion and r["intensity"] == x])
              for x in xs]
        ax.plot(xs, ys, marker="o", label=emotion)
    ax.set_xlabel("intensity asked")
    ax.set_ylabel("P(asked emotion), mean")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    figs.append(("Intensity response", figure_png(fig),
                 f"The probability {reader} gives the asked emotion, averaged over the outputs of the "
                 "full sweep at each intensity; a rising line is an intensity a reader can hear or see."))

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for i, emotion in enumerate(emotions):
        color = f"C{i}"
        sel = [r for r in rows if r["emotion"] == emotion and r.get(f"valence{suffix}") is not None]
        ax.scatter([r[f"valence{suffix}"] for r in sel], [r[f"arousal{suffix}"] for r in sel], s=12,
                   color=color, alpha=0.6, label=emotion)
        base = parse_emotion(emotion).dominant
        ax.scatter([ANCHORS[base].valence], [ANCHORS[base].arousal], marker="*", s=160, color=color,
                   edgecolor="k")
    ax.axhline(0, color="0.8")
    ax.axvline(0, color="0.8")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.legend(fontsize=7)
    figs.append(("Valence and arousal, asked and read", figure_png(fig),
                 f"Each dot is one output as {reader} reads it; each star the asked emotion's anchor "
                 "in the shared space, in the same colour."))

    correlates = report.get("correlates") or {}
    if correlates:
        names = sorted({k.split(":")[1] for k in correlates})
        units = {"f0_median_st": "semitones", "level_db": "dB", "tempo": "source / converted duration",
                 "f3_median_hz": "Hz"}
        fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3))
        for ax, name in zip(np.atleast_1d(axes), names):
            for key, c in correlates.items():
                emo, corr = key.split(":")
                if corr == name:
                    ax.plot(xs, c["means"], marker="o", label=f"{emo} ({c['spearman_of_means']:.2f})")
            ax.set_xlabel("intensity asked")
            ax.set_ylabel(f"{name} ({units.get(name, 'value')})", fontsize=8)
            ax.legend(fontsize=6)
        fig.tight_layout()
        figs.append(("Acoustic correlates against intensity", figure_png(fig),
                     "Mean over the full sweep's recordings of each correlate the literature fixes for an "
                     "emotion; the legend gives each line's Spearman against the intensity asked."))

    h = f"h{level}"
    parts = [f"<p>{html.escape(sweep_sentence(report))}</p>",
             f"<{h}>Accuracy at the top intensity: {html.escape(accuracy_text(acc))}</{h}>",
             f"<p>Read by {html.escape(reader)}{html.escape(reading)}: the share of outputs at intensity "
             f"{top:g} whose most probable category is the one asked, with its binomial standard error.</p>"]
    plain = report.get("plain_reading")
    if plain:
        pa = plain["accuracy_at_max_intensity"]
        parts.append(f"<p>The plain reading ({html.escape(plain['name'])}, the clip alone): "
                     f"{html.escape(accuracy_text(pa))}; {html.escape(plain['note'])}.</p>")
    parts.append(readers_html(report, h))
    thr = report.get("spearman_threshold", 0.9)
    parts += [f"<{h}>Does the reading follow the intensity? (Spearman, threshold {thr:g})</{h}>",
              html_rows(["emotion", f"Spearman, intensity vs P(asked) ({reader})", "pass"],
                        [[e, v["value"], mark(v["pass"])] for e, v in report["intensity_spearman"].items()])]
    side = report.get("readings_side_by_side")
    if side:
        norm = report["speaker_normalised"]
        na = norm["accuracy_at_max_intensity"]
        conf = np.array(na["confusion"])
        read = {cats[i]: ", ".join(f"{cats[j]} {conf[i, j]}" for j in np.flatnonzero(conf[i]))
                for i in range(len(cats)) if conf[i].sum()}
        sa = side["accuracy_at_max_intensity"]
        parts += [f"<{h}>Three readings of the same conversions</{h}>",
                  html_rows(["", "plain (the clip alone)", "speaker-normalised (the source as reference)",
                             "channel-matched (the source converted to neutral as reference)"],
                            [["accuracy at the top intensity", sa["plain"], sa["speaker_normalised"],
                              sa["channel_matched"]]]
                            + [[f"Spearman, {e}", v["plain"], v["speaker_normalised"], v["channel_matched"]]
                               for e, v in side["intensity_spearman"].items()]),
                  "<p>Speaker-normalised reading at the top intensity, asked: read as</p>",
                  html_table(read, ("asked", "read as (count)"))]
    parts += [f"<{h}>Quality guards</{h}>",
              html_rows(["guard", "value", "accepted", "pass"], guard_rows(report)),
              f"<{h}>Quality measures</{h}>",
              html_table({k.replace("_", " "): v for k, v in report["quality"].items()}, ("measure", "value"))]
    panel = report.get("portrait_panel")
    if panel:
        relaxed = ", ".join(f"{k} {n}" for k, n in panel["relaxed_read_as"].items())
        parts += [f"<{h}>Portrait panel: {panel['portraits']} real faces holding each emotion (stills)</{h}>",
                  f"<p>Relaxed faces (intensity 0) read as: {html.escape(relaxed)}; "
                  f"{len(panel['skipped'])} portraits without a face found.</p>",
                  html_table({e: f"read as {e} on {v['target_top_at_top']:.2f} of portraits at the top intensity "
                              f"({', '.join(f'{k} {n}' for k, n in v['read_at_top'].items())}); P(target) means "
                              + " / ".join(f"{x:.2f}" for x in v["p_target_means"])
                              + f", Spearman {v['spearman_of_means']:.2f}; rising on {v['portraits_rising']:.2f} "
                              "of portraits" for e, v in panel["emotions"].items()}, ("emotion", "reading"))]
        if panel.get("sheet"):  # a file beside the page
            cols = ", ".join(panel["sheet_columns"])
            parts.append(f"<figure><img alt='portrait panel' src='{html.escape(panel['sheet'])}'><figcaption>"
                         f"<b>Portrait panel.</b> Columns: {html.escape(cols)}.</figcaption></figure>")
    if correlates:
        parts += [f"<{h}>Acoustic correlates the literature fixes (Spearman of means, threshold 0.9)</{h}>",
                  html_rows(["emotion: correlate", "direction", "change at the top", "Spearman", "pass"],
                            [[k, c["direction"], c["change_at_top"], c["spearman_of_means"], mark(c["pass"])]
                             for k, c in correlates.items()])]
    parts += [figure_html(title, png, caption) for title, png, caption in figs]
    return "\n".join(p for p in parts if p)
