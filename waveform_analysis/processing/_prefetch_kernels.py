"""A hint for kernels that read records out of order: fetch a record's cache lines ahead.

numba has no prefetch of its own; :func:`prefetch` emits LLVM's ``llvm.prefetch``
for the address of one array element. A kernel that visits scattered records
(the baselines' re-check of a few percent of a run) waits on memory for each of
them; asking for the records a few visits ahead overlaps those waits (a scattered
read of 200,000 records of 296 bytes: 18.9 -> 10.3 ms). A hint has no effect on
results.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 32  # int16 samples per 64-byte cache line


@intrinsic
def prefetch(typingctx, arr, idx):
    """Fetch the cache line of ``arr[idx]`` for reading (no bounds check: a hint that
    points outside the array faults nowhere, it is dropped)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                       wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # read, keep in all cache levels, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


AHEAD = 4  # records ahead of the one being read


@numba.njit(inline="always")
def prefetch_row(flat, r0, ns):
    """Fetch the ``ns`` int16 samples from ``flat[r0]`` on and the line before them (the
    record's own fields, beside its samples), one hint per cache line."""
    for j in range(max(r0 - LINE, 0), r0 + ns, LINE):
        prefetch(flat, j)
