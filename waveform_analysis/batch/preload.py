"""Imported by a forkserver as a preload: loads the numeric kernels, so forked workers inherit them.

Importing it has that effect on purpose (a forkserver runs nothing but imports
before it forks); nothing else imports it.
"""

from __future__ import annotations

from .pools import load_kernels

load_kernels()
