"""CAEN readout-buffer layouts (what ``CAEN_DGTZ_ReadData`` returns), x725/x730 families.

Every event or board aggregate starts with a 4-word header, little-endian:

* w0: ``0xA`` in bits 28-31, the size in 32-bit words (header included) in 0-27;
* w1: board id 27-31, Board Fail 26 (standard firmware), pattern 8-23, channel
  mask (DPP: couple mask) 0-7;
* w2: channel mask 8-15 in bits 24-31, event (aggregate) counter 0-23;
* w3: trigger time tag, 31 bits, roll-over flag in bit 31.

Then, by firmware:

* **standard**: each masked channel's samples, one channel after another,
  two 14-bit samples per word (low half first); every channel holds
  ``(size - 4) * 2 / channels`` samples;
* **DPP-ZLE**: per masked channel a word with the baseline in 16-31 and the
  channel's size in words (this word included) in 0-15, then words of two
  samples, or, with ``0b1000`` in bits 28-31, a count of skipped words (two
  samples each, at the baseline) in 0-27;
* **DPP-PSD**: per masked couple an aggregate header (bit 31 set, size in
  words in 0-21), a format word (samples / 8 in 0-15; DT 31, EQ 30, ET 29,
  EE 28, ES 27; extras option 24-26), then events: a time-tag word (bit 31:
  odd channel of the couple; 0-30: time tag in sample ticks), the samples (2
  per word, 14 bits), an extras word (extended time tag in 16-31 for extras
  options 0-2), a charge word (Qlong 16-31, pile-up 15, Qshort 0-14).
"""

from __future__ import annotations

EVENT_MARKER = 0xA
HEADER_BYTES = 16
TTT_PERIOD = 1 << 31
PSD_EXTENDED_PERIOD = 1 << 47  # 31-bit time tag + 16-bit extension
MAX_SAMPLES = 1 << 23
BOARD_FAIL_BIT = 26
FLAG_BOARD_FAIL = 1 << BOARD_FAIL_BIT  # in st_waveforms.flags, as the v1725 reader sets it
FLAG_PILEUP = 0x8000  # the CoMPASS pile-up flag bit, set from the PSD charge word

STANDARD = 0
ZLE = 1
PSD = 2
FIRMWARE_NAMES = {STANDARD: "standard", ZLE: "DPP-ZLE", PSD: "DPP-PSD"}

ERR_MARKER = 1
ERR_EVENT_SIZE = 2
ERR_MASK = 3
ERR_CHANNEL = 4
ERR_COUPLE = 5
ERR_DUAL_TRACE = 6

MESSAGES = {
    ERR_MARKER: "unknown header word: bits 28-31 are not 0xA (not an event header)",
    ERR_EVENT_SIZE: "impossible event size in the event header (smaller than the 4-word header)",
    ERR_MASK: "the channel mask does not match the event size",
    ERR_CHANNEL: "bad DPP-ZLE channel header: size is 0 or runs past the end of the event",
    ERR_COUPLE: (
        "bad DPP-PSD couple aggregate: format bit clear, or its size or events run past "
        "the end of the board aggregate"
    ),
    ERR_DUAL_TRACE: "DPP-PSD dual-trace waveforms (DT bit) are not read",
}
