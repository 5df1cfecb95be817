"""The V1725 DAW event layout and the error codes of its walk, shared by the reader and its kernels."""

from __future__ import annotations

EVENT_MARKER = 0xA
EVENT_HEADER_BYTES = 16
CHANNEL_HEADER_BYTES = 12
TICK_NS = 4
BOARD_FAIL_BIT = 26  # of event header word 1 (CAEN V1725/UM3148 event structure)
FLAG_BOARD_FAIL = 1 << BOARD_FAIL_BIT  # in st_waveforms.flags
TIMESTAMP_PERIOD = 1 << 48  # channel timestamp counter, 4 ns ticks

ERR_MARKER = 1
ERR_EVENT_SIZE = 2
ERR_CHANNEL_SIZE = 3
ERR_MASK = 4
ERR_TRAILING = 5

MESSAGES = {
    ERR_MARKER: "bad event header: marker is not 0xA",
    ERR_EVENT_SIZE: "bad event header: event size is too small or runs past the end of the file",
    ERR_CHANNEL_SIZE: "bad channel header: size is too small or runs past the end of the event",
    ERR_MASK: "bad event header: channel mask does not match the event size",
    ERR_TRAILING: "truncated event header at the end of the file",
}
