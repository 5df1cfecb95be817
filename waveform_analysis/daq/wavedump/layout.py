"""WaveDump output layouts: binary event header, ASCII header lines, kernel error codes.

Binary (``OUTPUT_FILE_FORMAT BINARY`` with ``OUTPUT_FILE_HEADER YES``), per
event, little-endian: six u32 (event size in bytes including these 24, board
id, pattern, channel, event counter, trigger time tag), then the samples: u16,
or float32 on x742 boards (rounded to the nearest integer when read). The
trigger time tag is a 31-bit counter with its roll-over flag in bit 31.

ASCII: per event the seven lines of :data:`ASCII_KEYS` (``Key: value``, hex
values as ``0x...``), then ``Record Length`` lines of one sample each.
"""

from __future__ import annotations

import numpy as np

HEADER_BYTES = 24
TTT_PERIOD = 1 << 31
MAX_SAMPLES = 1 << 23  # above every CAEN board's memory per channel: a larger size is corrupt
SAMPLE_U16 = 2
SAMPLE_F32 = 4

ASCII_KEYS = (
    "Record Length",
    "BoardID",
    "Channel",
    "Event Number",
    "Pattern",
    "Trigger Time Stamp",
    "DC offset (DAC)",
)
# the keys as one byte string and their start offsets, for the numba kernel
ASCII_KEY_BYTES = np.frombuffer("".join(ASCII_KEYS).encode(), np.uint8).copy()
ASCII_KEY_STARTS = np.cumsum([0] + [len(k) for k in ASCII_KEYS]).astype(np.int64)

ERR_SIZE = 1
ERR_HEADER = 2
ERR_ASCII_KEY = 3
ERR_ASCII_NUMBER = 4

MESSAGES = {
    ERR_SIZE: (
        "impossible event size in the event header (smaller than the 24-byte header, "
        "not a whole number of samples, or above 2**23 samples)"
    ),
    ERR_HEADER: "not a WaveDump event header (board id above 31 or channel above 63)",
    ERR_ASCII_KEY: (
        "unexpected line where a WaveDump event header line was expected "
        f"({', '.join(ASCII_KEYS)})"
    ),
    ERR_ASCII_NUMBER: "a sample line that is not a number",
}
