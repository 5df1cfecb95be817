"""waveform_analysis: digitizer waveforms to peaks over many runs."""
