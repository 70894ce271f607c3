"""Views of parts of flat buffers, built without Numba's slicing machinery.

The kernels keep all data in flat buffers and loop over 0-based views of their
parts (see ``_functions`` for why). Numba's slicing and ``reshape`` normalise
and check their arguments, which costs tens of milliseconds of compilation for
every call site, and run-time checks in hot loops. These intrinsics build the
view directly: a pointer into the buffer, a shape and C-contiguous strides,
sharing the buffer's memory owner. The caller guarantees the part lies inside
the buffer.
"""

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
        meminfo=source.meminfo,
        parent=source.parent,
    )
    result = view._getvalue()
    # The view is a new reference to the buffer's memory.
    context.nrt.incref(builder, view_type, result)
    return result


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
