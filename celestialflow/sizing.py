"""How many tasks the next chunk takes: small at first, growing towards the back-end's target.

A chunk starts at the back-end's ``first_chunk`` and grows (at most doubling per
finished chunk) towards ``target`` seconds of work, measured in the worker;
chunks that send back many bytes are cut to a byte budget; and a pool's chunk
never takes more than a free worker's share of the input actually available, so
every worker gets some (unless that share would carry less than the back-end's
``min_share`` seconds of work). A slow task is therefore handed over, and its result
passed on, one at a time; trivial tasks travel in big chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import Backend

#: Bytes a chunk's outcome may take on its way back from a worker process.
CHUNK_BYTES = 8 << 20


class ChunkSize:
    """The chunk size of one run on ``backend``; ``fixed``: the stage's own ``chunk_size``."""

    __slots__ = ("backend", "fixed", "chunk", "per_task")

    def __init__(self, backend: Backend, fixed: int | None) -> None:
        self.backend = backend
        self.fixed = fixed
        self.chunk = backend.first_chunk
        self.per_task: float | None = None

    def next(self, source: Any, open_chunks: int, max_inflight: int) -> int:
        """Tasks for the next chunk, with ``open_chunks`` of ``max_inflight`` out."""
        if self.fixed:
            return self.fixed
        n = self.chunk
        avail = source.available()
        if avail is not None:
            b = self.backend
            # workers busy with a chunk each get none; async chunks overlap, so by worker count
            free = b.workers if b.target is None else max(1, min(b.workers, max_inflight - open_chunks))
            share = -(-avail // free)
            if b.min_share and self.per_task:  # but a share carries min_share seconds of work
                share = max(share, int(b.min_share / self.per_task))
            n = min(n, max(1, share))
        return n

    def learn(self, ran: int, elapsed: float, nbytes: int) -> None:
        """Adapt to what the last chunk measured in its worker."""
        if ran <= 0 or self.fixed:
            return
        per = elapsed / ran
        self.per_task = per if self.per_task is None else 0.5 * (self.per_task + per)
        b = self.backend
        if b.target is None:
            fit = b.max_chunk
        else:
            fit = int(b.target / self.per_task) if self.per_task > 0 else b.max_chunk
        if nbytes:
            fit = min(fit, int(CHUNK_BYTES * ran / nbytes))
        self.chunk = max(1, min(b.max_chunk, fit, 2 * self.chunk))
