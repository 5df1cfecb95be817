"""The real CAEN files of ../shared/realdata with waveforms, as st_waveforms, for the physics checks.

Small numpy readers of the byte layouts that SOURCES.md describes (the bench
reads WaveDump files and the V1730 readout dumps, whose adapters live on
other branches, the same way as the CoMPASS ones). Each entry: ``name``,
``st`` (``st_waveforms`` without baselines), ``polarity``, and where the file
or its run states them: ``energy`` / ``energy_short`` (the firmware's charges),
``pretrigger`` / ``pre_gate`` (samples) and the gates in ns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from waveform_analysis.dtypes import st_waveforms_dtype

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _st(waves: np.ndarray, dt: float, channel=0) -> np.ndarray:
    st = np.zeros(len(waves), st_waveforms_dtype(waves.shape[1]))
    st["wave"] = waves
    st["length"] = waves.shape[1]
    st["dt"] = dt
    st["channel"] = channel
    st["time"] = np.arange(len(waves), dtype=np.int64) * 1_000_000
    return st


def libra() -> dict:
    rows = []
    for f in sorted((REALDATA / "libra-toolbox").glob("Data_CH4@DT5725_*4in*.CSV")):
        rows += [ln.split(";") for ln in f.read_text().splitlines() if ln and not ln.startswith("BOARD")]
    return {"name": "libra DT5725 CSV (no settings)", "polarity": "negative",
            "st": _st(np.array([r[7:] for r in rows], np.int64), 4.0),
            "energy": np.array([int(r[3]) for r in rows], np.float64),
            "energy_short": np.array([int(r[4]) for r in rows], np.float64)}


def _setting(text: str, key: str) -> float:
    m = re.search(rf"<key>{key}</key>\s*<value>\s*<value[^>]*>([^<]*)</value>", text)
    return float(m.group(1))


def legend(channel: int) -> dict:
    raw = (REALDATA / "legend-testdata" / "compass_test_data.BIN").read_bytes()
    ev = np.frombuffer(raw[2:], np.dtype([
        ("board", "<u2"), ("channel", "<u2"), ("timetag", "<u8"), ("energy", "<u2"),
        ("energy_short", "<u2"), ("flags", "<u4"), ("code", "u1"), ("n", "<u4"),
        ("wave", "<u2", 1000)]))
    ev = ev[(ev["channel"] == channel) & ((ev["flags"] & 0x80) == 0)]  # not saturating in gate
    xml = (REALDATA / "legend-testdata" / "compass_test_data_settings.xml").read_text()
    dt = 2.0
    return {"name": f"legend DT5730 BIN ch{channel}", "polarity": "positive",
            "st": _st(ev["wave"].astype(np.int64), dt, channel),
            "energy": ev["energy"].astype(np.float64),
            "energy_short": ev["energy_short"].astype(np.float64),
            "pretrigger": int(_setting(xml, "SRV_PARAM_CH_PRETRG") / dt),
            "pre_gate": int(_setting(xml, "SRV_PARAM_CH_GATEPRE") / dt),
            "gates": {"gate_long_ns": _setting(xml, "SRV_PARAM_CH_GATE"),
                      "gate_short_ns": _setting(xml, "SRV_PARAM_CH_GATESHORT"),
                      "pre_gate_ns": _setting(xml, "SRV_PARAM_CH_GATEPRE")}}


def wavedump_ascii() -> dict:
    lines = (REALDATA / "pyrate" / "WDTestData.txt").read_text().splitlines()
    waves, i = [], 0
    while i < len(lines):
        n = int(lines[i].split(":")[1])
        waves.append(np.array(lines[i + 7 : i + 7 + n], np.int64))
        i += 7 + n
    return {"name": "pyrate WaveDump ASCII", "polarity": "negative", "st": _st(np.array(waves), 2.0)}


def wavedump_binary() -> dict:
    a = np.frombuffer((REALDATA / "Wavedump_Wrapper_TPB" / "wave_1.dat").read_bytes(), np.uint8)
    waves = a.reshape(-1, 284)[:, 24:].copy().view("<u2").astype(np.int64)
    # POST_TRIGGER 50 % of 128 samples (WaveDumpConfig_1730B_TPB.txt)
    return {"name": "TPB WaveDump binary", "polarity": "negative", "st": _st(waves, 2.0),
            "pretrigger": 64}


def _words(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), "<u4")


def _samples(words: np.ndarray) -> np.ndarray:
    s = np.empty(2 * words.size, np.int64)
    s[0::2] = words & 0x3FFF
    s[1::2] = (words >> 16) & 0x3FFF
    return s


def v1730_raw() -> list[dict]:
    b = _words(REALDATA / "pyrate" / "1730_RAWTest-Board_0-001.dat")
    p, waves = 0, {}
    while p + 4 <= b.size and b[p] >> 28 == 0xA and p + (b[p] & 0x0FFFFFFF) <= b.size:
        size = int(b[p] & 0x0FFFFFFF)
        mask = int(b[p + 1] & 0xFF) | (int(b[p + 2] >> 24) << 8)
        chans = [c for c in range(16) if mask >> c & 1]
        per = (size - 4) // len(chans)
        for k, c in enumerate(chans):
            waves.setdefault(c, []).append(_samples(b[p + 4 + k * per : p + 4 + (k + 1) * per]))
        p += size
    return [{"name": f"pyrate V1730 standard dump ch{c}", "polarity": "negative",
             "st": _st(np.array(w), 2.0, c), "pretrigger": 200} for c, w in waves.items()]


def v1730_psd() -> dict:
    b = _words(REALDATA / "pyrate" / "1730_PSDTest-Board_0-001.dat")
    p, waves, q_long, q_short = 0, [], [], []
    while p + 4 <= b.size and b[p] >> 28 == 0xA and p + (b[p] & 0x0FFFFFFF) <= b.size:
        size = int(b[p] & 0x0FFFFFFF)
        q = p + 4
        while q < p + size:
            agg = int(b[q] & 0x3FFFFF)
            ns = int(b[q + 1] & 0xFFFF) * 8
            e = q + 2
            while e < q + agg:
                waves.append(_samples(b[e + 1 : e + 1 + ns // 2]))
                charge = int(b[e + 2 + ns // 2])
                q_long.append(charge >> 16)
                q_short.append(charge & 0x7FFF)
                e += 3 + ns // 2
            q += agg
        p += size
    keep = np.array(q_short) < 0x7FFF  # the 15-bit short charge saturated
    # preTriggerSize 200 (RAW.conf); the gates of this run are not in the files: defaults
    return {"name": "pyrate V1730 DPP-PSD dump (gates unknown)", "polarity": "negative",
            "st": _st(np.array(waves)[keep], 2.0), "pretrigger": 200,
            "energy": np.array(q_long, np.float64)[keep],
            "energy_short": np.array(q_short, np.float64)[keep]}


def all_files() -> list[dict]:
    """Every file with waveforms; empty when ../shared/realdata is absent."""
    if not REALDATA.is_dir():
        return []
    return [libra(), legend(0), legend(1), wavedump_ascii(), wavedump_binary(), *v1730_raw(),
            v1730_psd()]
