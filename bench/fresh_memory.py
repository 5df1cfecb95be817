"""How fast this machine hands a process memory it has not used lately, against memory just freed.

    python bench/fresh_memory.py [--mb 800]

Writes ``--mb`` of new file pages (the page cache, as a cache entry or a
scratch file does) after the machine's memory has been idle for a few seconds,
and again straight after the previous file was deleted, on 1 and 2 threads.
On a virtual machine whose host takes back the memory its guest frees
(virtio-balloon free page reporting), the first touch of such memory is served
by the host and is several times slower than reusing pages just freed; a
large run touches about twice its records' size of new page-cache memory
(the staging's scratch file and the ``st_waveforms`` entry), so this rate,
not the code, sets much of its time and of its spread between processes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def write(paths: list[Path], mb: int) -> float:
    """GB/s of writing ``mb`` MiB of new pages, split over one thread per path."""
    block = np.ones(8 << 20, np.uint8)

    def one(path: Path) -> None:
        with open(path, "wb") as f:
            for _ in range(mb // 8 // len(paths)):
                f.write(block)

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rate = mb / 1024 / (time.perf_counter() - t)
    for p in paths:
        p.unlink()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle memory before a fresh write")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for n in (1, 2):
            paths = [Path(d) / f"t{i}" for i in range(n)]
            time.sleep(args.idle)
            fresh = write(paths, args.mb)
            reused = write(paths, args.mb)  # the pages the first write's files just gave back
            print(f"{n} thread(s): memory idle {args.idle:.0f} s {fresh:5.2f} GB/s, "
                  f"just freed {reused:5.2f} GB/s ({reused / fresh:.1f} x)")
    print(f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
