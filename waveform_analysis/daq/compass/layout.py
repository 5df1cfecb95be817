"""CoMPASS file layouts and the error codes of their kernels, shared by the readers and kernels.

CSV: ``;``-separated, TIMETAG in ps, FLAGS hex text; columns named by the
first file's header (:mod:`.columns`). BIN 2.x: a u16 file header
``0xCAE0 | bits`` (:data:`BIN_ENERGY` ...), then events of
``board u16, channel u16, timetag u64 [ps], [energy u16], [energy_cal f64],
[energy_short u16], flags u32, [code u8, n u32, n x u16]``. BIN 1.x: no file
header, events of ``board u16, channel u16, timetag u64, energy u16,
energy_short u16, flags u32, n u32, n x u16`` (24 + 2n bytes). All
little-endian. Sources and the real files that confirm them:
``shared/realdata/SOURCES.md``.
"""

from __future__ import annotations

# CSV kernel error codes
ERR_OK = 0
ERR_TRUNCATED = 1
ERR_TOO_LONG = 2
ERR_NOT_NUMERIC = 3
ERR_RANGE = 4
ERR_COUNT = 5
ERR_VALUE_RANGE = 6

CSV_MESSAGES = {
    ERR_TRUNCATED: "truncated line: fewer columns than the other rows ({ncols} expected)",
    ERR_TOO_LONG: "rows of different lengths: more columns than the other rows ({ncols} expected)",
    ERR_NOT_NUMERIC: "non-numeric value in column {col}",
    ERR_RANGE: "sample out of int16 range in column {col}",
    ERR_COUNT: "inconsistent line count while parsing",
    ERR_VALUE_RANGE: "value out of range in column {col} (int64; FLAGS uint32)",
}

# BIN 2.x file header word: 0xCAE0 | bits
BIN_MAGIC = 0xCAE0
BIN_MAGIC_MASK = 0xFFF0
BIN_ENERGY = 0x1  # energy in ADC channels, u16
BIN_ENERGY_CAL = 0x2  # calibrated energy, f64
BIN_ENERGY_SHORT = 0x4  # energy short, u16
BIN_WAVEFORM = 0x8  # waveform code u8, n_samples u32, n x u16
BIN_HEADER_BYTES = 2
BIN_FIXED_BYTES = 16  # board u16, channel u16, timetag u64, ... flags u32 (4 of the 16)
BIN1_EVENT_BYTES = 24  # 1.x: board, channel, timetag, energy, energy_short, flags, n_samples

# BIN kernel error codes
ERR_BIN_TRUNCATED = 1  # an event runs past the end of the file
ERR_BIN_SIZE = 2  # n_samples larger than any digitizer records
ERR_BIN_CHANNEL = 3  # channel number out of range (not a CoMPASS event here)

BIN_MESSAGES = {
    ERR_BIN_TRUNCATED: "truncated event: it runs past the end of the file",
    ERR_BIN_SIZE: "impossible event size: n_samples {value} (more than {limit})",
    ERR_BIN_CHANNEL: "channel {value} out of range 0-{limit} (not a CoMPASS event here: wrong "
    "layout, or a corrupt or misaligned file)",
}
MAX_SAMPLES = 1 << 22  # more samples per event than any CAEN board records
MAX_CHANNEL = 63  # more channels than any CAEN board has

# CoMPASS FLAGS bits (CoMPASS manual, FLAGS table)
FLAG_FAKE = 0x8
FLAG_SATURATING_IN_GATE = 0x80
FLAG_INPUT_SATURATING = 0x400
FLAG_PILEUP = 0x8000
FLAG_PLL_LOCK_LOSS = 0x80000
FLAG_OVER_TEMPERATURE = 0x100000
FLAG_ADC_SHUTDOWN = 0x200000
FAKE_FLAGS = FLAG_FAKE | FLAG_PLL_LOCK_LOSS | FLAG_OVER_TEMPERATURE | FLAG_ADC_SHUTDOWN
SATURATION_FLAGS = FLAG_SATURATING_IN_GATE | FLAG_INPUT_SATURATING
