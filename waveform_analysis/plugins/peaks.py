"""``peaks``: hits above a noise-following threshold, with position, height, area and width."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.plugin import Option, Plugin
from ..dtypes import PEAKS_DTYPE
from ..processing.hits import HIT_DEFAULTS

__all__ = ["PeaksPlugin", "POLARITY"]

POLARITY = Option(
    default="negative",
    type=str,
    choices=("negative", "positive"),
    help="Pulse direction relative to the baseline",
    per_channel=True,
)


class PeaksPlugin(Plugin):
    """Hits from ``max(threshold, threshold_sigma x noise)`` down to ``release_sigma x noise``.

    ``noise`` is the run's median ``baseline_rms`` of the record's (board,
    channel); the tail extension follows each hit's own width (see
    :func:`waveform_analysis.processing.find_peaks` and docs/physics.md).
    """

    provides = "peaks"
    dtype = PEAKS_DTYPE
    depends_on = ("st_waveforms",)
    version = "2.4.0"  # 2.2: one pulse one peak, per-record noise guard; 2.3: position on the
    # 3-sample average; 2.3.1: saturation at each board's ADC limit; 2.4: the channel noise
    # counts the spread of the baselines
    chunked = True
    options = {
        "threshold": Option(
            default=HIT_DEFAULTS.threshold,
            type=float,
            per_channel=True,
            help="Least ADC above baseline for a hit to start (the floor under threshold_sigma)",
        ),
        "threshold_sigma": Option(
            default=HIT_DEFAULTS.threshold_sigma,
            type=float,
            help="A hit starts above this many times the channel's noise (the windows' RMS and"
            " the baselines' spread)",
        ),
        "release_sigma": Option(
            default=HIT_DEFAULTS.release_sigma,
            type=float,
            help="A hit lasts until the signal falls to this many times the channel's noise",
        ),
        "tail_extension": Option(
            default=HIT_DEFAULTS.tail_extension,
            type=float,
            help="Samples added after a hit, in units of its area / height (its decay constant)",
        ),
        "position_sigma": Option(
            default=HIT_DEFAULTS.position_sigma,
            type=float,
            help="position: the first sample of the 3-sample average within this many sigma of"
            " its maximum (0: the raw extremum)",
        ),
        "split_sigma": Option(
            default=HIT_DEFAULTS.split_sigma,
            type=float,
            help="Split a peak where the signal rises by this many noise sigma (at least the"
            " trigger level) within 3 samples after its extremum; 0: never",
        ),
        "split_height": Option(
            default=HIT_DEFAULTS.split_height,
            type=float,
            help="A second pulse is split off only when it rises by this fraction of the first's"
            " height; smaller followers within the peak's length join it",
        ),
        "split_fraction": Option(
            default=HIT_DEFAULTS.split_fraction,
            type=float,
            help="... and by this fraction of the level of the tail it rises from",
        ),
        "noise_guard": Option(
            default=HIT_DEFAULTS.noise_guard,
            type=float,
            help="A record's own noise (1.17 x baseline_rms) raises its threshold when up to this"
            " x its channel's; 0: the channel's noise alone",
        ),
        "polarity": POLARITY,
        "merge_gap": Option(
            default=HIT_DEFAULTS.merge_gap,
            type=(int, type(None)),
            help="Hits closer than this many samples merge (None: within the tail extension)",
        ),
        "left_extension": Option(
            default=HIT_DEFAULTS.left_extension, type=int, help="Samples added before a peak"
        ),
        "right_extension": Option(
            default=HIT_DEFAULTS.right_extension,
            type=(int, type(None)),
            help="Samples added after a peak (None: tail_extension x the hit's area / height)",
        ),
        "min_width": Option(
            default=1, type=int, help="Fewest samples beyond the release level a hit keeps"
        ),
    }

    def compute(self, context, run_id: str, st_waveforms: np.ndarray) -> np.ndarray:
        return self._find(context, run_id, st_waveforms, None, self._settings(context, run_id))

    def _find(self, context, run_id: str, records: np.ndarray, noise: np.ndarray | None,
              settings: dict) -> np.ndarray:
        """:func:`find_peaks` of ``records``, a board at a time where the run's boards have
        different ADC limits (a 12-bit and a 14-bit board), so that each peak's ``saturated``
        is judged at its own board's limit, as its record's is."""
        from ..core.channels import channel_settings
        from ..processing.hits import find_peaks

        kw = channel_settings(context, self, run_id, records, settings)
        groups = self._limit_groups(context, run_id, records) if "adc_max" in settings else []
        if len(groups) < 2:
            return find_peaks(records, noise=noise, **kw)
        parts = []
        for limit, rows in groups:
            sub = {k: v[rows] if isinstance(v, np.ndarray) and v.shape[:1] == (len(records),) else v
                   for k, v in kw.items()}
            found = find_peaks(records[rows], noise=None if noise is None else noise[rows],
                               **{**sub, "adc_max": limit})
            found["record_i"] = rows[found["record_i"]]
            parts.append(found)
        out = np.concatenate(parts)
        return out[np.argsort(out["record_i"], kind="stable")]

    def _limit_groups(self, context, run_id: str, records: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(ADC limit, rows)`` per distinct limit among the boards of ``records``."""
        from .raw_files import run_info_for
        from .st_waveforms import adc_max_for

        info = run_info_for(context, run_id)[1]
        if not info.boards or "board" not in (records.dtype.names or ()):
            return []
        rows_of: dict[int, list[np.ndarray]] = {}
        for one, rows in info.by_board(records["board"]):
            rows = np.arange(len(records)) if rows is None else rows
            rows_of.setdefault(adc_max_for(context, one), []).append(rows)
        return [(limit, np.sort(np.concatenate(r))) for limit, r in rows_of.items()]

    def compute_chunks(self, context, run_id: str, chunks) -> Iterator[np.ndarray]:
        """Per chunk of records, with each channel's noise measured over the whole run first."""
        from ..core.channels import warn_absent
        from ..processing.noise import noise_from
        from ..processing.rows import channel_keys

        settings = self._settings(context, run_id)
        names = chunks.inputs["st_waveforms"].dtype.names or ()
        if chunks.n_records and "board" in names:
            warn_absent(context.config, run_id, **chunks.fields("board", "channel"))
        if chunks.n_records and "baseline_rms" in names:
            f = chunks.fields("board", "channel", "baseline_rms", "baseline")
            noise = noise_from(channel_keys(f["board"], f["channel"]), f["baseline_rms"],
                               f["baseline"])
        else:  # as channel_noise: no baseline_rms, no noise
            noise = np.zeros(chunks.n_records, np.float64)
        return self.each_chunk(
            chunks,
            lambda chunk: self._find(context, run_id, chunk.inputs["st_waveforms"],
                                     noise[chunk.start : chunk.stop], settings),
        )

    def _settings(self, context, run_id: str) -> dict:
        """This plugin's options, and the ADC limit ``st_waveforms`` judges saturation by
        (its ``adc_max`` option), so that a peak and its record agree."""
        settings = {name: context.get_config(self, name) for name in self.options}
        source = context.plugins.get("st_waveforms")
        if source is not None and "adc_max" in source.options:
            from .raw_files import run_info_for
            from .st_waveforms import adc_max_for

            # None: the run's own ADC limit, as st_waveforms resolves it
            settings["adc_max"] = adc_max_for(context, run_info_for(context, run_id)[1])
        return settings
