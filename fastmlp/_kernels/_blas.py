"""Row-major matrix products on sub-blocks of flat buffers, from compiled code.

Numba's ``np.dot`` only takes whole contiguous arrays and always allocates or
overwrites its output. The kernels multiply sub-blocks (a chunk of rows, a band
of a weight matrix's rows) that live inside flat buffers, with explicit leading
dimensions. So they call the BLAS ``gemm`` and ``gemv`` that Numba itself uses
for ``np.dot`` (SciPy's BLAS, reached through Numba's ``numba_xxgemm`` and
``numba_xxgemv`` helper symbols) directly. Calls are resolved by symbol name,
so the kernels stay cacheable on disk.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

from .._config import INNER_JIT_OPTIONS

# Make sure SciPy's BLAS is importable before any kernel is compiled: Numba
# looks the gemm pointers up from scipy.linalg.cython_blas on first use.
ensure_blas()

# int numba_xxgemm(kind, transa, transb, m, n, k, *alpha, *a, lda, *b, ldb,
#                  *beta, *c, ldc): column-major gemm of the dtype named by kind.
_xxgemm = types.ExternalFunction(
    "numba_xxgemm",
    types.intc(
        types.char,
        types.char,
        types.char,
        types.intp,
        types.intp,
        types.intp,
        types.voidptr,
        types.voidptr,
        types.intp,
        types.voidptr,
        types.intp,
        types.voidptr,
        types.voidptr,
        types.intp,
    ),
)

# int numba_xxgemv(kind, trans, m, n, *alpha, *a, lda, *x, *beta, *y):
# column-major y = alpha * op(A) @ x + beta * y, unit strides.
_xxgemv = types.ExternalFunction(
    "numba_xxgemv",
    types.intc(
        types.char,
        types.char,
        types.intp,
        types.intp,
        types.voidptr,
        types.voidptr,
        types.intp,
        types.voidptr,
        types.voidptr,
        types.voidptr,
    ),
)

_NO_TRANSPOSE = ord("N")
_TRANSPOSE = ord("T")


@intrinsic
def _element_address(typingctx, array, offset):
    """Address of ``array.flat[offset]`` as a void pointer (no bounds check)."""
    if not isinstance(array, types.Array) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_struct = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        element = builder.gep(array_struct.data, [index])
        return builder.bitcast(element, ir.IntType(8).as_pointer())

    return types.voidptr(array, offset), codegen


@intrinsic
def _scalar_address(typingctx, value):
    """Address of a stack copy of ``value``, valid in the calling function."""
    if not isinstance(value, types.Float):
        return None

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, ir.IntType(8).as_pointer())

    return types.voidptr(value), codegen


@intrinsic
def _blas_kind(typingctx, array):
    """The BLAS type letter of the array's dtype, as a compile-time constant."""
    letters = {types.float64: "d", types.float32: "s"}
    if not isinstance(array, types.Array) or array.dtype not in letters:
        return None
    letter = ord(letters[array.dtype])

    def codegen(context, builder, signature, args):
        return context.get_constant(types.char, letter)

    return types.char(array), codegen


@njit(**INNER_JIT_OPTIONS)
def _gemm(
    transpose_a,
    transpose_b,
    m,
    n,
    k,
    alpha,
    a,
    a_offset,
    lda,
    b,
    b_offset,
    ldb,
    beta,
    c,
    c_offset,
    ldc,
):
    """C = alpha * op(A) @ op(B) + beta * C on row-major blocks of flat buffers.

    op(A) is m x k and op(B) is k x n. A block starts at ``a.flat[a_offset]``
    with row stride ``lda`` (likewise for B and C); ``transpose_a`` means the
    block of A is stored as k x m. All three arrays share one float dtype.
    """
    # A row-major m x n block is the column-major n x m block C^T, and
    # C^T = op(B)^T @ op(A)^T, so BLAS gets B first and A second.
    dtype = c.dtype.type
    _xxgemm(
        _blas_kind(c),
        _TRANSPOSE if transpose_b else _NO_TRANSPOSE,
        _TRANSPOSE if transpose_a else _NO_TRANSPOSE,
        n,
        m,
        k,
        _scalar_address(dtype(alpha)),
        _element_address(b, b_offset),
        ldb,
        _element_address(a, a_offset),
        lda,
        _scalar_address(dtype(beta)),
        _element_address(c, c_offset),
        ldc,
    )


@njit(**INNER_JIT_OPTIONS)
def _row_times_matrix(n, k, x, x_offset, b, b_offset, y, y_offset):
    """y = x @ B for one row: x is k values from ``x.flat[x_offset]``, B the
    row-major k x n block from ``b.flat[b_offset]`` (row stride n), y the n
    values from ``y.flat[y_offset]``.

    gemm copies (packs) all of B on every call, which for a row or two costs
    more than the product; gemv reads B once, in place.
    """
    # Row-major k x n B is column-major n x k B^T, and y = B^T @ x.
    dtype = y.dtype.type
    _xxgemv(
        _blas_kind(y),
        _NO_TRANSPOSE,
        n,
        k,
        _scalar_address(dtype(1.0)),
        _element_address(b, b_offset),
        n,
        _element_address(x, x_offset),
        _scalar_address(dtype(0.0)),
        _element_address(y, y_offset),
    )
