"""WaveDump output (binary, x742 float binary, ASCII) and its config file: the ``wavedump`` adapter."""

from __future__ import annotations

from .config import WaveDumpConfig, read_config
from .reader import WaveDumpAdapter

__all__ = ["WaveDumpAdapter", "WaveDumpConfig", "read_config"]
