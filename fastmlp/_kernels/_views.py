"""Views of parts of flat buffers, built without Numba's slicing machinery.

The kernels keep all data in flat buffers and loop over 0-based views of their
parts (see ``_functions`` for why). Numba's slicing and ``reshape`` normalise
and check their arguments, which costs tens of milliseconds of compilation for
every call site, and run-time checks in hot loops. These intrinsics build the
view directly: a pointer into the buffer, a shape and C-contiguous strides.

The views are untracked: they hold no reference to the buffer's memory owner.
A tracked view costs an atomic increment and decrement of the owner's count
each time it is made or passed on: measured, 20% of an epoch of a small
network on one thread, and the threads of a team would also bounce the
shared counts between their cores. ``_untracked`` gives the same treatment to
whole arrays, at the top of each kernel. The buffers come from Python and
outlive the kernel call, and no view is ever returned, so nothing needs the
count. The caller guarantees the part lies inside the buffer.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _view_codegen(context, builder, signature, args, ndim):
    source_type = signature.args[0]
    view_type = signature.return_type
    source = make_array(source_type)(context, builder, args[0])
    start = context.cast(builder, args[1], signature.args[1], types.intp)
    extents = [
        context.cast(builder, value, value_type, types.intp)
        for value, value_type in zip(args[2:], signature.args[2:])
    ]
    itemsize = context.get_constant(
        types.intp, context.get_abi_sizeof(context.get_data_type(source_type.dtype))
    )
    strides = [itemsize] if ndim == 1 else [builder.mul(extents[1], itemsize), itemsize]
    view = make_array(view_type)(context, builder)
    populate_array(
        view,
        data=builder.gep(source.data, [start]),
        shape=cgutils.pack_array(builder, extents),
        strides=cgutils.pack_array(builder, strides),
        itemsize=itemsize,
        meminfo=None,
        parent=None,
    )
    return view._getvalue()


def _is_flat(array):
    return isinstance(array, types.Array) and array.ndim == 1


@intrinsic
def _span(typingctx, buffer, start, length):
    """``buffer[start:start + length]`` as a 1-D view."""
    if not _is_flat(buffer):
        return None
    view_type = buffer.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        return _view_codegen(context, builder, signature, args, 1)

    return view_type(buffer, start, length), codegen


@intrinsic
def _block(typingctx, buffer, start, n_rows, width):
    """The ``n_rows x width`` row-major block of ``buffer`` from ``start``."""
    if not _is_flat(buffer):
        return None
    view_type = buffer.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        return _view_codegen(context, builder, signature, args, 2)

    return view_type(buffer, start, n_rows, width), codegen


@intrinsic
def _untracked(typingctx, array):
    """The same array, holding no reference to its memory owner (see above).
    None (the CSR arrays of dense input) passes through."""
    if isinstance(array, types.NoneType):
        return array(array), lambda context, builder, signature, args: args[0]
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        view = make_array(signature.return_type)(context, builder)
        populate_array(
            view,
            data=source.data,
            shape=source.shape,
            strides=source.strides,
            itemsize=source.itemsize,
            meminfo=None,
            parent=None,
        )
        return view._getvalue()

    return array(array), codegen


@intrinsic
def _prefetch(typingctx, buffer, offset):
    """Ask the CPU to start loading the cache line of ``buffer.flat[offset]``.

    A hint only: it never faults, even outside the buffer, and changes no
    result. Rows of a shuffled mini-batch are scattered over the data set, so
    each would otherwise miss the caches in turn when it is first read.
    """
    if not isinstance(buffer, types.Array) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        byte_pointer = ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(source.data, [index]), byte_pointer)
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # Read access, highest temporal locality, data cache.
        builder.call(prefetch, [address, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(buffer, offset), codegen
