"""A digitizer stand-in for tests/test_online.py, run as its own process.

``python online_writer.py STAGING DAQ`` reads commands on stdin and answers ``ok`` on
stdout once each is written:

* ``seg RUN K``: write segment K of RUN's files (copied from STAGING/RUN/RAW), each file
  in two halves with a pause between, as a digitizer appends to the file it writes;
* ``stop RUN``: write RUN/run.info with a stop time, as CoMPASS does when a run ends;
* ``run RUN``: write every file of RUN, then its run.info.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def segment_of(path: Path, run: str) -> int:
    """CoMPASS 2.x names: ``..._<run>.CSV`` for the first segment, ``..._<run>_<k>.CSV`` after."""
    stem = path.stem
    return 0 if stem.endswith(run) else int(stem.rsplit("_", 1)[1])


def grow(src: Path, dst: Path, pause: float = 0.05) -> None:
    data = src.read_bytes()
    half = len(data) // 2
    with open(dst, "ab") as fh:
        fh.write(data[:half])
        fh.flush()
        time.sleep(pause)
        fh.write(data[half:])


def stop(daq: Path, run: str) -> None:
    (daq / run / "run.info").write_text(
        f"id={run}\ntime.start=2025/03/19 09:47:46.724-0400\n"
        "time.stop=2025/03/19 09:53:05.651-0400\ntime.real=00:05:18\n"
    )


def main(staging: Path, daq: Path) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd, run, *rest = line.split()
        src, dst = staging / run / "RAW", daq / run / "RAW"
        dst.mkdir(parents=True, exist_ok=True)
        files = sorted(src.iterdir())
        if cmd == "seg":
            for f in files:
                if segment_of(f, run) == int(rest[0]):
                    grow(f, dst / f.name)
        elif cmd == "run":
            for f in files:
                grow(f, dst / f.name)
            stop(daq, run)
        elif cmd == "stop":
            stop(daq, run)
        print("ok", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
