"""``python -m waveform_analysis``: the command line (see :mod:`waveform_analysis.cli`)."""

from waveform_analysis.cli import main

if __name__ == "__main__":
    main(prog_name="waveform-analysis")
