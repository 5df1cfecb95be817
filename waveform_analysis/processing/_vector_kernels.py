"""Vector code numba does not write by itself, emitted as LLVM IR.

The baselines' walk (:func:`._baselines_kernels._quiet_end`) tests each sample
against the running mean of those before it: ``|x_j j - s_j| <= near_j[j]``,
``s_j`` the sum of the samples before ``j``. Written sample by sample the
running sum is a chain and the test ~11 instructions per sample; LLVM does not
vectorise it, as the sum of each lane depends on the lanes before it.
:func:`quiet8` makes the 8 tests of a block at once: the 8 running sums from a
prefix sum in 3 shifts and adds of one vector, then one multiply, subtraction
and two comparisons for all 8 (int64 lanes: exact for any 16-bit samples and
record lengths), and the first lane that fails with its running sum, so that the
walk judges that sample next. The results are the scalar tests', bit for bit.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8


def _shifted(builder: ir.IRBuilder, v: ir.Value, by: int) -> ir.Value:
    """``v``'s lanes moved ``by`` places up, zeros shifted in."""
    fill = ir.Constant(v.type, None)
    mask = [LANES + i if i < by else i - by for i in range(LANES)]
    return builder.shuffle_vector(v, fill, ir.Constant(ir.VectorType(ir.IntType(32), LANES), mask))


def _block(context, builder, row_ty, row, j) -> ir.Value:
    """``row[j:j + 8]`` (int16) as 8 int64 lanes."""
    rows = context.make_array(row_ty)(context, builder, row)
    ptr = cgutils.get_item_pointer(context, builder, row_ty, rows, [j], wraparound=False,
                                   boundscheck=False)
    y16 = builder.load(builder.bitcast(ptr, ir.VectorType(ir.IntType(16), LANES).as_pointer()),
                       align=2)
    return builder.sext(y16, ir.VectorType(ir.IntType(64), LANES))


def _first_lane(builder: ir.IRBuilder, mask: ir.Value) -> ir.Value:
    """The first lane set in ``mask`` (<8 x i1>) as i32, 8 where none is."""
    i32 = ir.IntType(32)
    bits = builder.or_(builder.zext(builder.bitcast(mask, ir.IntType(LANES)), i32),
                       ir.Constant(i32, 1 << LANES))
    cttz = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i32, [i32, ir.IntType(1)]), "llvm.cttz.i32")
    return builder.call(cttz, [bits, ir.Constant(ir.IntType(1), 1)])


def _lane_or_last(builder: ir.IRBuilder, before: ir.Value, after: ir.Value,
                  first: ir.Value) -> ir.Value:
    """``before[first]``, or ``after[7]`` when ``first`` is 8 (no lane stopped the block)."""
    i32 = ir.IntType(32)
    last = ir.Constant(i32, LANES - 1)
    inside = builder.icmp_unsigned("<", first, ir.Constant(i32, LANES))
    return builder.select(inside, builder.extract_element(before, builder.select(inside, first, last)),
                          builder.extract_element(after, last))


def _splat(builder: ir.IRBuilder, x: ir.Value, vty: ir.VectorType) -> ir.Value:
    """A vector of ``LANES`` copies of ``x``."""
    one = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


@intrinsic
def quiet8(typingctx, row, j, s, near_j):
    """``(first, total, before)`` for the 8 samples ``row[j:j + 8]`` (int16) after samples
    summing to ``s`` (int64): ``first`` the first lane ``i`` where ``|row[j+i] (j+i) -
    s_{j+i}| > near_j[j+i]`` (``near_j`` int64; ``s_{j+i}`` = ``s`` + the samples of the block
    before it; 8 where none is), ``total`` the block's sum and ``before`` ``s_{j+first}``
    (``s + total`` when none fails). No bounds check: the caller keeps ``j + 8`` within
    both arrays."""
    sig = types.UniTuple(types.int64, 3)(row, j, s, near_j)

    def codegen(context, builder, signature, args):
        row_ty, _, _, near_ty = signature.args
        i64 = ir.IntType(64)
        v64 = ir.VectorType(i64, LANES)
        jj = context.cast(builder, args[1], signature.args[1], types.int64)
        ss = context.cast(builder, args[2], signature.args[2], types.int64)
        y = _block(context, builder, row_ty, args[0], jj)
        near = context.make_array(near_ty)(context, builder, args[3])
        p_near = cgutils.get_item_pointer(context, builder, near_ty, near, [jj],
                                          wraparound=False, boundscheck=False)
        n = builder.load(builder.bitcast(p_near, v64.as_pointer()), align=8)
        inclusive = y  # prefix sums of the block, in 3 shift-and-add steps
        for by in (1, 2, 4):
            inclusive = builder.add(inclusive, _shifted(builder, inclusive, by))
        start = _splat(builder, ss, v64)
        before = builder.add(start, builder.sub(inclusive, y))
        index = builder.add(_splat(builder, jj, v64), ir.Constant(v64, list(range(LANES))))
        t = builder.sub(builder.mul(y, index), before)
        first = _first_lane(builder, builder.or_(builder.icmp_signed(">", t, n),
                                                 builder.icmp_signed("<", t, builder.neg(n))))
        total = builder.extract_element(inclusive, ir.Constant(ir.IntType(32), LANES - 1))
        at = _lane_or_last(builder, before, builder.add(start, inclusive), first)
        return context.make_tuple(builder, signature.return_type,
                                  [builder.zext(first, i64), total, at])

    return sig, codegen
