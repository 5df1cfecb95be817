"""The WaveDump configuration file (``WaveDumpConfig.txt`` or the file the user names).

``KEY value`` lines, ``#`` comments, a ``[COMMON]`` section and per-channel
sections ``[<c>]`` whose values override the common ones for that channel.
Read here: ``RECORD_LENGTH`` (samples), ``POST_TRIGGER`` (percent of the
record after the trigger), ``PULSE_POLARITY``, ``DRS4_FREQUENCY`` (x742),
``OUTPUT_FILE_FORMAT`` and ``OUTPUT_FILE_HEADER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError
from ..models import drs4_dt_ns as drs4_period

CONFIG_NAME = "WaveDumpConfig.txt"


@dataclass
class WaveDumpConfig:
    """The settings of one WaveDump config file, with the line each came from."""

    path: Path
    common: dict[str, str] = field(default_factory=dict)
    channels: dict[int, dict[str, str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str, channel: int | None = None) -> str | None:
        """The value of ``key`` for ``channel`` (its section first, then ``[COMMON]``)."""
        if channel is not None and key in self.channels.get(channel, {}):
            return self.channels[channel][key]
        return self.common.get(key)

    def _int(self, key: str) -> int | None:
        value = self.common.get(key)
        if value is None:
            return None
        try:
            return int(value.split()[0])
        except (ValueError, IndexError):
            raise ConfigError(
                f"WaveDump config {self.path}, line {self.lines[key]}: {key} {value!r} "
                "is not an integer"
            ) from None

    @property
    def record_length(self) -> int | None:
        return self._int("RECORD_LENGTH")

    @property
    def post_trigger_percent(self) -> int | None:
        return self._int("POST_TRIGGER")

    @property
    def pretrigger_samples(self) -> int | None:
        """Samples before the trigger: ``RECORD_LENGTH * (100 - POST_TRIGGER) / 100``."""
        n, post = self.record_length, self.post_trigger_percent
        if n is None or post is None:
            return None
        return int(round(n * (100 - post) / 100))

    def polarity(self, channel: int | None = None) -> str | None:
        """``"positive"`` or ``"negative"`` (``PULSE_POLARITY``), None when absent."""
        value = self.get("PULSE_POLARITY", channel)
        return None if value is None else value.split()[0].lower()

    @property
    def drs4_dt_ns(self) -> float | None:
        """The x742 sample period set by ``DRS4_FREQUENCY`` (code 0-3 or MHz)."""
        value = self.common.get("DRS4_FREQUENCY")
        if value is None:
            return None
        try:
            return drs4_period(value.split()[0])
        except (ValueError, IndexError):
            raise ConfigError(
                f"WaveDump config {self.path}, line {self.lines['DRS4_FREQUENCY']}: "
                f"DRS4_FREQUENCY {value!r} is none of 0-3 or a frequency in MHz"
            ) from None

    @property
    def header(self) -> bool:
        """Whether binary/ASCII files carry the event headers (``OUTPUT_FILE_HEADER``)."""
        return (self.common.get("OUTPUT_FILE_HEADER", "YES").split() or ["YES"])[0].upper() != "NO"


def read_config(path: Path | str) -> WaveDumpConfig:
    """Parse a WaveDump config file; a line that is not ``KEY value`` is skipped."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"WaveDump config {path} does not exist") from None
    cfg = WaveDumpConfig(path)
    section: dict[str, str] = cfg.common
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip()
            if name.upper() == "COMMON":
                section = cfg.common
            elif name.isdigit():
                section = cfg.channels.setdefault(int(name), {})
            else:  # [BOARD ...] and other sections: not read
                section = {}
            continue
        key, _, value = line.partition(" ")
        section[key.upper()] = value.strip()
        if section is cfg.common:
            cfg.lines[key.upper()] = number
    return cfg


def find_config(folder: Path) -> Path | None:
    """The WaveDump config in ``folder``: ``WaveDumpConfig.txt``, else the one
    ``WaveDumpConfig*.txt``; None when there is none; :class:`ConfigError` when several."""
    exact = folder / CONFIG_NAME
    if exact.is_file():
        return exact
    found = sorted(p for p in folder.glob("WaveDumpConfig*.txt") if p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError(
            f"{folder}: several WaveDump configs ({names}); name the one to use "
            "(the wavedump adapter's config option)"
        )
    return found[0] if found else None
