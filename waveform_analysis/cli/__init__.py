"""The ``waveform-analysis`` command line: generate, run, graph, cache, show, plot, export, watch.

Every command works on a data folder laid out as ``DATA_ROOT/<run>/...`` (the
DAQ adapter, ``vx2730`` or ``v1725``, is detected from the files unless given
with ``--adapter``). Results go to a cache folder (``--cache``, default
``$WAVEFORM_ANALYSIS_STORAGE_DIR`` or ``~/.cache/waveform_analysis``).

Exit codes: 0 success, 1 a run failed (or a cache entry is damaged), 2 bad usage.

Needs the optional extra ``cli`` (click); ``import waveform_analysis`` does not
import this module.
"""

from __future__ import annotations

import difflib
from typing import Any

import click

from .analysis import export, plot
from .common import package_version
from .inspection import cache, graph, show
from .processing import generate, run
from .watching import watch

__all__ = ["main"]


class _Group(click.Group):
    """A group that suggests the closest command for a typo."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if args and name not in self.commands and not name.startswith("-"):
            close = difflib.get_close_matches(name, list(self.commands), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(
                f"no command {name!r}.{hint} Commands: {', '.join(sorted(self.commands))}", ctx
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from ..errors import ConfigError, PluginError, WaveformAnalysisError

        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError) as exc:  # a bad option, data name or config file
            raise click.UsageError(str(exc)) from None
        except WaveformAnalysisError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="waveform-analysis")
def main() -> None:
    """Digitizer waveforms to peaks, from the shell.

    \b
    Example:
      waveform-analysis generate DAQ --runs 2 --waveforms 200
      waveform-analysis run DAQ --all --plots plots
      waveform-analysis show DAQ
      waveform-analysis watch DAQ --segments
    """


for _command in (generate, run, plot, export, graph, cache, show, watch):
    main.add_command(_command)
