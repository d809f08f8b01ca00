"""``affect eval vocoder``: the speech converter's neural vocoders side by side on real recordings.

For each vocoder and each real recording:

- copy synthesis: the recording's own mel through the vocoder alone; the log-mel distance of the
  result to the recording (mean absolute difference of natural-log mel magnitudes, 80 slaney
  bands 0-8 kHz at 22,050 Hz, frames aligned): what the vocoder loses by itself; and the
  log-spectrum distance (linear STFT bins 0-8 kHz at 512 and 2,048 points), which a vocoder
  that pulls its output's mel to its input's (``FastVocoder.mel_refine``) does not match by
  construction; wideband PESQ against the recording (with the ``quality`` extra), a model of
  a listener's grade; and the harmonic contrast of the copy beside the recording's (how distinct
  the harmonics stay from the noise between them);
- conversions at intensity 0 (neutral) and at the top intensity of each emotion: word error of the
  offline recognizer against the transcript, GE2E speaker cosine to the source, and the copy's
  and conversions' level of clicks: the largest sample-to-sample jump relative to the clip's RMS;
- the time each vocoder takes.

The converter and the copy path come in as callables (``convert(wav, sr, emotion, vocoder,
generator)``, ``copy(wav, sr, vocoder)``), so this module imports no generator. The page shows
log-mel spectrograms of the same clips through every vocoder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conditioning.audio import load_audio, resample, save_audio
from evaluators.metrics import WordErrorRate
from evaluators.metrics.speech import SpeakerSimilarity, transcribe

logger = logging.getLogger(__name__)

SR = 22050


def log_mel(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(80, frames) natural-log mel magnitudes at 22,050 Hz (n_fft 1024, hop 256, 0-8 kHz)."""
    import torch
    import torchaudio

    x = torch.from_numpy(resample(np.asarray(wav, np.float32), sample_rate, SR))
    mel = torchaudio.transforms.MelSpectrogram(SR, n_fft=1024, hop_length=256, n_mels=80, f_min=0.0,
                                               f_max=8000.0, power=1.0, norm="slaney", mel_scale="slaney")
    return torch.log(mel(x).clamp_min(1e-5)).numpy()


def log_mel_distance(a: np.ndarray, sr_a: int, b: np.ndarray, sr_b: int) -> float:
    """Mean |log mel(a) - log mel(b)| over the frames both have."""
    ma, mb = log_mel(a, sr_a), log_mel(b, sr_b)
    n = min(ma.shape[1], mb.shape[1])
    return float(np.abs(ma[:, :n] - mb[:, :n]).mean())


def _log_spectrum(wav: np.ndarray, sample_rate: int, n_fft: int, hop: int) -> np.ndarray:
    """(n_fft // 2 + 1, frames) natural-log STFT magnitudes at 22,050 Hz (Hann window, centred
    frames), floored at 1e-5."""
    import torch

    x = torch.from_numpy(resample(np.asarray(wav, np.float32), sample_rate, SR))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return torch.log(spec.clamp_min(1e-5)).numpy()


def log_spectrum_distance(a: np.ndarray, sr_a: int, b: np.ndarray, sr_b: int,
                          resolutions: tuple[int, ...] = (512, 2048), fmax: float = 8000.0) -> float:
    """Mean |log |STFT(a)| - log |STFT(b)|| over linear bins up to ``fmax`` (magnitudes floored at
    1e-5), averaged over FFT sizes ``resolutions`` (hop a quarter of each), frames aligned: the
    harmonics and the noise between them bin by bin, at resolutions other than the mel's, which
    a vocoder that matches its input's 80 mel bands need not match."""
    out = []
    for n in resolutions:
        sx, sy = _log_spectrum(a, sr_a, n, n // 4), _log_spectrum(b, sr_b, n, n // 4)
        k, t = int(fmax / (SR / n)) + 1, min(sx.shape[1], sy.shape[1])
        out.append(float(np.abs(sx[:k, :t] - sy[:k, :t]).mean()))
    return float(np.mean(out))


def harmonic_contrast(wav: np.ndarray, sample_rate: int, band: tuple[float, float] = (700.0, 5000.0)) -> float:
    """How distinct the harmonics are from the noise between them: over the loudest half of the
    frames, the standard deviation of the 2,048-point log spectrum in ``band`` after its envelope
    (a 15-bin moving average, 160 Hz) is taken out. Smeared harmonics (a breathy or hoarse
    rendering of a clear voice) lower it; a vocoder's copy should keep its source's."""
    from scipy.ndimage import uniform_filter1d

    log = _log_spectrum(wav, sample_rate, 2048, 256)
    k0, k1 = (int(f / (SR / 2048)) for f in band)
    loud = log.max(0) >= np.median(log.max(0))
    seg = log[k0:k1, loud]
    return float((seg - uniform_filter1d(seg, 15, axis=0)).std(axis=0).mean())


def pesq_wideband(a: np.ndarray, sr_a: int, ref: np.ndarray, sr_ref: int) -> float | None:
    """Wideband PESQ (ITU-T P.862.2, 16 kHz; 1 to 4.6, higher is better) of ``a`` against the
    reference ``ref``: a model of how a listener grades the copy against the original, which no
    part of the vocoders sees. ``None`` when the optional ``pesq`` package (the ``quality`` extra)
    is not installed or finds no speech."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    x, y = resample(np.asarray(ref, np.float32), sr_ref, 16000), resample(np.asarray(a, np.float32), sr_a, 16000)
    n = min(len(x), len(y))
    try:
        return float(pesq(16000, x[:n].astype(np.float64), y[:n].astype(np.float64), "wb"))
    except Exception as exc:  # the package's NoUtterancesError and kin: no figure for this clip
        logger.warning("PESQ: %s", exc)
        return None


def click_ratio(wav: np.ndarray) -> float:
    """The largest jump between neighbouring samples over the clip's RMS: a click or a step at a
    block join shows as a jump far above what the speech itself makes."""
    x = np.asarray(wav, np.float64)
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    return float(np.abs(np.diff(x)).max() / rms)


def evaluate_vocoders(convert: Callable, copy: Callable, out_dir: str | Path,
                      recordings: list[tuple[Path, str]], emotions: list[str], vocoders: list[str],
                      top: float = 1.0, seed: int = 0, keep_audio: bool = True) -> dict:
    """Run the comparison and write ``report.json`` / ``report.html`` into ``out_dir``."""
    import torch

    from evaluators.report import write_report

    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    per = {v: {"mel": [], "spec": [], "pesq": [], "contrast": [], "wer": WordErrorRate(), "wer0": WordErrorRate(), "spk": SpeakerSimilarity(),
               "clicks": [], "seconds": 0.0, "audio_s": 0.0} for v in vocoders}
    wer_src = WordErrorRate()
    contrast_src = []
    rows, spectra = [], []
    for k, (clip, text) in enumerate(recordings):
        src = load_audio(clip)
        wer_src.update(text, transcribe(src.wav, src.sample_rate))
        contrast_src.append(harmonic_contrast(src.wav, src.sample_rate))
        shown = {"file": Path(clip).name, "source": log_mel(src.wav, src.sample_rate)}
        for v in vocoders:
            p = per[v]
            t = time.perf_counter()
            y, sr = copy(src.wav, src.sample_rate, v)
            p["seconds"] += time.perf_counter() - t
            p["audio_s"] += len(y) / sr
            d = log_mel_distance(y, sr, src.wav, src.sample_rate)
            p["mel"].append(d)
            p["spec"].append(log_spectrum_distance(y, sr, src.wav, src.sample_rate))
            p["contrast"].append(harmonic_contrast(y, sr))
            q = pesq_wideband(y, sr, src.wav, src.sample_rate)
            if q is not None:
                p["pesq"].append(q)
            p["clicks"].append(click_ratio(y))
            rows.append({"recording": Path(clip).name, "vocoder": v, "kind": "copy", "log_mel_distance": d})
            if k < 3:
                shown[v] = log_mel(y, sr)
                if keep_audio:
                    save_audio(out / "audio" / f"{k:02d}_copy_{v}.wav", y, sr)
            for emotion, intensity in [("neutral", 0.0)] + [(e, top) for e in emotions]:
                res = convert(src.wav, src.sample_rate, emotion=f"{emotion}@{intensity:g}", vocoder=v,
                              generator=torch.Generator().manual_seed(seed))
                hyp = transcribe(res.audio, res.sample_rate)
                (p["wer0"] if intensity == 0 else p["wer"]).update(text, hyp)
                cos = p["spk"].update(src.wav, src.sample_rate, res.audio, res.sample_rate)
                p["clicks"].append(click_ratio(res.audio))
                rows.append({"recording": Path(clip).name, "vocoder": v, "kind": f"{emotion}@{intensity:g}",
                             "asr": hyp, "speaker_cosine": cos})
                if keep_audio and k < 3 and emotion in ("neutral", emotions[0]):
                    save_audio(out / "audio" / f"{k:02d}_{emotion}_{v}.wav", res.audio, res.sample_rate)
        spectra.append(shown)
        logger.info("vocoder eval: recording %d done", k)
    summary = {}
    for v in vocoders:
        p = per[v]
        w0, w1 = p["wer0"].compute(), p["wer"].compute()
        both = WordErrorRate()
        both.edits, both.words = p["wer0"].edits + p["wer"].edits, p["wer0"].words + p["wer"].words
        s = p["spk"].compute()
        summary[v] = {"log_mel_distance_copy": float(np.mean(p["mel"])),
                      "log_spectrum_distance_copy": float(np.mean(p["spec"])),
                      "pesq_wb_copy": float(np.mean(p["pesq"])) if p["pesq"] else None,
                      "harmonic_contrast_copy": float(np.mean(p["contrast"])),
                      "wer_intensity_0": w0, "wer_top": w1, "wer_both": both.compute(),
                      "speaker_cosine_mean": s["mean"], "speaker_cosine_min": s["min"],
                      "max_click_ratio": float(np.max(p["clicks"])),
                      "copy_real_time_factor": p["seconds"] / max(p["audio_s"], 1e-9)}
    report = {"medium": "vocoder", "title": "Vocoders side by side",
              "sweep": {"recordings": [Path(c).name for c, _ in recordings], "emotions": emotions,
                        "top_intensity": top, "vocoders": vocoders},
              "wer_source": wer_src.compute(), "harmonic_contrast_source": float(np.mean(contrast_src)),
              "vocoders": summary, "rows": rows}
    if "hifigan" in summary:
        ref = summary["hifigan"]
        report["against_hifigan"] = {
            v: {"log_mel_distance_ratio": s["log_mel_distance_copy"] / max(ref["log_mel_distance_copy"], 1e-9),
                "log_spectrum_distance_ratio": s["log_spectrum_distance_copy"] / max(ref["log_spectrum_distance_copy"], 1e-9),
                "pesq_wb_change": (s["pesq_wb_copy"] - ref["pesq_wb_copy"]) if s["pesq_wb_copy"] is not None
                and ref["pesq_wb_copy"] is not None else None,
                "wer_points": 100 * (s["wer_both"] - ref["wer_both"]),
                "speaker_cosine_change": s["speaker_cosine_mean"] - ref["speaker_cosine_mean"]}
            for v, s in summary.items() if v != "hifigan"}
    report["figures"] = {"spectrograms": _spectrogram_figure(spectra[:3], vocoders)}
    return write_report(out, report, render=vocoder_html)


def vocoder_html(report: dict) -> str:
    """The comparison as a page: one sentence of what was run, the table, the spectrograms."""
    import html

    from evaluators.report import html_page

    sw = report["sweep"]
    head = ("<tr><th>vocoder</th><th>copy log-mel distance</th><th>copy log-spectrum distance</th>"
            "<th>copy PESQ (wideband)</th><th>copy harmonic contrast</th><th>word error, intensity 0</th>"
            "<th>word error, top</th><th>speaker cosine (mean / min)</th><th>largest jump / RMS</th>"
            "<th>copy real-time factor</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(v)}</td><td>{s['log_mel_distance_copy']:.3f}</td>"
        f"<td>{s['log_spectrum_distance_copy']:.3f}</td>"
        f"<td>{'-' if s['pesq_wb_copy'] is None else format(s['pesq_wb_copy'], '.2f')}</td>"
        f"<td>{s['harmonic_contrast_copy']:.3f}</td>"
        f"<td>{100 * s['wer_intensity_0']:.1f} %</td><td>{100 * s['wer_top']:.1f} %</td>"
        f"<td>{s['speaker_cosine_mean']:.3f} / {s['speaker_cosine_min']:.3f}</td>"
        f"<td>{s['max_click_ratio']:.1f}</td><td>{s['copy_real_time_factor']:.3f}</td></tr>"
        for v, s in report["vocoders"].items())
    parts = [f"<h1>{html.escape(report['title'])}</h1>",
             f"<p>{len(sw['recordings'])} real recordings ({html.escape(', '.join(sw['recordings']))}), "
             f"each copied through every vocoder and converted to neutral (intensity 0) and to "
             f"{html.escape(', '.join(sw['emotions']))} at intensity {sw['top_intensity']:g}. The "
             f"recordings themselves have a word error of {100 * report['wer_source']:.1f} % and a harmonic "
             f"contrast of {report['harmonic_contrast_source']:.3f}.</p>",
             f"<table>{head}{body}</table>"]
    for v, a in report.get("against_hifigan", {}).items():
        parts.append(f"<p>{html.escape(v)} against HiFi-GAN V1: copy log-mel distance x"
                     f"{a['log_mel_distance_ratio']:.2f}, copy log-spectrum distance x"
                     f"{a['log_spectrum_distance_ratio']:.2f}, word error {a['wer_points']:+.1f} points, speaker "
                     f"cosine {a['speaker_cosine_change']:+.3f}.</p>")
    parts.append("<h2>Log-mel spectrograms of the same clips</h2><figure><img alt='spectrograms' "
                 f"src='data:image/png;base64,{report['figures']['spectrograms']}'><figcaption>Rows: "
                 "the first three recordings; columns: the source, then its copy through each vocoder "
                 "(80 mel bands, 0-8 kHz, natural-log magnitude, the same colour scale).</figcaption></figure>")
    return html_page("AffectStudio: vocoders side by side", "\n".join(parts))


def _spectrogram_figure(spectra: list[dict], vocoders: list[str]) -> str:
    """Log-mel spectrograms of the same clips (rows) from the source and each vocoder (columns),
    as a base64 PNG."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["source", *vocoders]
    fig, axes = plt.subplots(len(spectra), len(cols), figsize=(4 * len(cols), 2.6 * len(spectra)), squeeze=False)
    for r, s in enumerate(spectra):
        for c, name in enumerate(cols):
            ax = axes[r][c]
            m = s[name]
            ax.imshow(m, origin="lower", aspect="auto", vmin=-11, vmax=2, cmap="magma",
                      extent=(0, m.shape[1] * 256 / SR, 0, 80))
            ax.set_title(f"{s['file']}: {'copy by ' + name if name != 'source' else 'source'}", fontsize=8)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("mel band")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()
