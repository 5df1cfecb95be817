"""The kernel warm-up loads what a real run calls: afterwards a run of any synthetic format adds
no numba signature."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from waveform_analysis.daq.warmup import READERS, warm_up_readers

# A new process: this one may have loaded signatures of other tests' runs already.
_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from numba.core.registry import CPUDispatcher
    from waveform_analysis.batch.pools import load_kernels

    def signatures():
        out = set()
        for name, mod in list(sys.modules.items()):
            if name.startswith("waveform_analysis") and "synthetic" not in name and mod is not None:
                for attr, value in vars(mod).items():
                    if isinstance(value, CPUDispatcher) and value.__module__ == name:
                        out.update(f"{name}.{attr}{sig}" for sig in value.signatures)
        return out

    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.synthetic import generate_run

    from waveform_analysis.synthetic import FORMATS

    tmp = sys.argv[1]
    for fmt in FORMATS:  # generated first: the generator has kernels of its own
        generate_run(os.path.join(tmp, fmt), "r", fmt=fmt, n_waveforms=40, n_samples=200, seed=3)
    load_kernels()
    warm = signatures()
    n_events = 0
    for fmt in FORMATS:  # each run's format recognised from its files, as by default
        ctx = Context(storage_dir=os.path.join(tmp, "cache-" + fmt), config={"data_root": os.path.join(tmp, fmt)})
        ctx.register(standard_plugins())
        ctx.get_data("r", "basic_features")
        n_events += len(ctx.get_data("r", "events"))
    print(json.dumps({"warm": len(warm), "new": sorted(signatures() - warm), "events": n_events}))
    """
)


def test_a_real_run_after_warm_up_adds_no_kernel_signature(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["events"] > 0  # the run reached every kernel of the chain, events included
    assert got["warm"] >= 10
    assert got["new"] == []  # a new signature would be compiled or loaded in the first run


def test_reader_warm_up_takes_known_formats_and_skips_others():
    from waveform_analysis.daq.registry import available_adapters, get_adapter

    ours = {n for n in available_adapters() if type(get_adapter(n)).__module__.startswith("waveform_analysis.daq")}
    assert ours and ours <= set(READERS)  # a new reader of the package needs its warm-up too
    assert warm_up_readers(["v1725", "no-such-format"]) >= 0.0
    assert warm_up_readers([]) == pytest.approx(0.0, abs=0.01)
