"""Import paths kept for code written before :mod:`waveform_analysis.batch` (the batch lives there)."""
