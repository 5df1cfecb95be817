"""Generate three runs, find their peaks with a BatchProcessor, print a summary."""

import sys
import tempfile
from pathlib import Path

from waveform_analysis import BatchProcessor, Context, standard_plugins
from waveform_analysis.synthetic import generate_runs

if __name__ == "__main__":
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    runs = ["run_001", "run_002", "run_003"]
    generate_runs(base / "DAQ", runs, n_waveforms=500)
    ctx = Context(storage_dir=base / "cache", config={"data_root": str(base / "DAQ")})
    ctx.register(standard_plugins())
    result = BatchProcessor(ctx).process_runs(runs, "peaks", max_workers=2, show_progress=False)
    for run in result["ordered_run_ids"]:
        meta = result["meta"][run]
        print(run, meta["status"], len(result["results"].get(run, [])), "peaks")
