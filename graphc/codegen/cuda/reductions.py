"""Reductions in CUDA C: accumulators (their dtypes and first values: graphc/kernels/ir.py's
REDUCTIONS), the update of an accumulator by a value, and the block-wide combination of the
threads' partial results (PRELUDE).

Float sums and products accumulate in double, as the CPU backend's do; integer ones wrap
around; a bool sum is `any` and a bool product `all`. A warp or a block shares a
reduction by giving each thread every 32nd or blockDim.x-th position; a warp then combines its
partial results through shuffles, a block each warp's so and then the warps' through shared
memory. argmax/argmin carry (value, position) pairs, and a tie goes to the first position.
Accumulating stores (scatter-adds) are atomic.
"""
from ...kernels import ir
from .launch import ERROR_WORDS, GRID_BLOCKS, SPLIT_COUNTS, THREADS
from .scalar import expression
from .types import FLOATS, REGISTER, literal, to_storage

PRELUDE = r"""// ---- reductions shared by a warp or a block --------------------------------------
#define GC_BLOCK %d  // the most threads a block has: a multiple of the warp size
#define GC_WARP 32
#define GC_NO_POSITION 9223372036854775807LL  // the position of a thread that saw nothing

template <typename T> struct gc_best { T value; long long at; };  // argmax/argmin's partials
// A value from the lane `mask` away in the warp (every lane of the warp must call it)
template <typename T> GC_INLINE T gc_shuffle_xor(T v, int mask) {
    return __shfl_xor_sync(0xffffffffu, v, mask);
}
GC_INLINE bool gc_shuffle_xor(bool v, int mask) {
    return __shfl_xor_sync(0xffffffffu, (int)v, mask) != 0;
}
// 8- and 16-bit integers travel as ints (shuffles move 32 bits at least)
#define GC_SHUFFLE_AS_INT(T) \
    GC_INLINE T gc_shuffle_xor(T v, int mask) { \
        return (T)__shfl_xor_sync(0xffffffffu, (int)v, mask); \
    }
GC_SHUFFLE_AS_INT(signed char) GC_SHUFFLE_AS_INT(unsigned char)
GC_SHUFFLE_AS_INT(short) GC_SHUFFLE_AS_INT(unsigned short)
template <typename T> GC_INLINE gc_best<T> gc_shuffle_xor(gc_best<T> v, int mask) {
    return {gc_shuffle_xor(v.value, mask), gc_shuffle_xor(v.at, mask)};
}
// Every lane of the warp passes its partial result and gets the warp's: halving by shuffles
// in a butterfly, so that every lane combines the same pairs (the combinations commute).
template <typename T, typename Combine> GC_INLINE T gc_warp_reduce(T partial, Combine combine) {
    for (int mask = GC_WARP / 2; mask > 0; mask /= 2)
        partial = combine(partial, gc_shuffle_xor(partial, mask));
    return partial;
}
// Every thread of the block passes its partial result and gets the block's: each warp's
// through shuffles, then the warps' in order from shared memory. All the block's threads must
// call it.
template <typename T, typename Combine> GC_INLINE T gc_block_reduce(T partial, Combine combine) {
    __shared__ T warps[GC_BLOCK / GC_WARP];
    partial = gc_warp_reduce(partial, combine);
    if (threadIdx.x %% GC_WARP == 0) warps[threadIdx.x / GC_WARP] = partial;
    __syncthreads();
    T out = warps[0];
    for (unsigned int w = 1; w < blockDim.x / GC_WARP; ++w) out = combine(out, warps[w]);
    __syncthreads();  // before the next reduction writes warps
    return out;
}
// Reductions shared by the grid ("grid" kernels): each block leaves its partial result in the
// work area after the error report (error[0], error[1]) and the count of finished blocks
// (error[2]), 16 bytes per block and reduction; the last block to finish combines them.
GC_INLINE long long gc_grid_thread() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
GC_INLINE long long gc_grid_threads() { return (long long)gridDim.x * blockDim.x; }
template <typename T> GC_INLINE T* gc_partials(long long* error, int which) {
    return (T*)(error + %d + 2LL * %d * which);
}
template <typename T> GC_INLINE void gc_grid_put(long long* error, int which, T partial) {
    if (threadIdx.x == 0) gc_partials<T>(error, which)[blockIdx.x] = partial;
}
// Whether this block is the last to finish: then every block's partial results are visible
// (each made its writes visible before it counted itself); the last resets the count.
GC_INLINE bool gc_grid_last(long long* error) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned int* done = (unsigned int*)(error + 2);
        last = atomicAdd(done, 1u) == gridDim.x - 1;
        if (last) *done = 0;
    }
    __syncthreads();
    return last;
}
// Other blocks' results, read past this block's L1 cache
template <typename T> GC_INLINE T gc_read_shared(const T* p) { return *(const volatile T*)p; }
template <typename T> GC_INLINE gc_best<T> gc_read_shared(const gc_best<T>* p) {
    return {gc_read_shared(&p->value), gc_read_shared(&p->at)};
}
// The partial results of blocks [first, first + count) combined, in the same order in every
// thread of the last block
template <typename T, typename Combine>
GC_INLINE T gc_grid_combine(long long* error, int which, T identity, Combine combine,
                            unsigned int first, unsigned int count) {
    const T* partials = gc_partials<T>(error, which) + first;
    T out = identity;
    for (unsigned int b = threadIdx.x; b < count; b += blockDim.x)
        out = combine(out, gc_read_shared(partials + b));
    return gc_block_reduce(out, combine);
}
// Rows split across blocks ("split_rows" kernels): with fewer rows than blocks (counting the
// first blocks that partial results have room for), `shares` consecutive blocks take each row,
// else one block a row. Blocks past the rows' shares find no row.
GC_INLINE unsigned int gc_split_shares(long long lo, long long hi) {
    long long rows = hi - lo, blocks = gridDim.x < %d ? gridDim.x : %d;
    return rows > 0 && rows < blocks ? (unsigned int)(blocks / rows) : 1u;
}
// Whether this block is the last of its row's shares to finish (as gc_grid_last; the row's
// count is the team's, reset by the last)
GC_INLINE bool gc_split_last(long long* error, unsigned int team, unsigned int shares) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned int* done = (unsigned int*)(error + %d) + team;
        last = atomicAdd(done, 1u) == shares - 1;
        if (last) *done = 0;
    }
    __syncthreads();
    return last;
}

// A warp's lane, and warps counted over the grid (kernels where a warp takes a row)
GC_INLINE unsigned int gc_lane() { return threadIdx.x %% GC_WARP; }
GC_INLINE long long gc_warp() {
    return ((long long)blockIdx.x * blockDim.x + threadIdx.x) / GC_WARP;
}
GC_INLINE long long gc_warps() { return (long long)gridDim.x * blockDim.x / GC_WARP; }
struct gc_plus { template <typename T> GC_INLINE T operator()(T a, T b) const { return a + b; } };
struct gc_times { template <typename T> GC_INLINE T operator()(T a, T b) const { return a * b; } };
struct gc_wrapping_plus {
    template <typename T> GC_INLINE T operator()(T a, T b) const { return gc_add(a, b); }
};
struct gc_wrapping_times {
    template <typename T> GC_INLINE T operator()(T a, T b) const { return gc_mul(a, b); }
};
struct gc_any { GC_INLINE bool operator()(bool a, bool b) const { return a || b; } };
struct gc_all { GC_INLINE bool operator()(bool a, bool b) const { return a && b; } };
struct gc_max {
    template <typename T> GC_INLINE T operator()(T a, T b) const { return gc_maximum(a, b); }
};
struct gc_min {
    template <typename T> GC_INLINE T operator()(T a, T b) const { return gc_minimum(a, b); }
};

// argmax (High) or argmin: the extreme of two partial results, NaN the most extreme; on a tie
// the first position
template <bool High> struct gc_arg_best {
    template <typename T> GC_INLINE gc_best<T> operator()(gc_best<T> a, gc_best<T> b) const {
        bool a_nan = a.value != a.value, b_nan = b.value != b.value;
        bool beats = High ? b.value > a.value : b.value < a.value;
        bool tie = a_nan == b_nan && (a_nan || a.value == b.value);
        return (!a_nan && (beats || b_nan)) || (tie && b.at < a.at) ? b : a;
    }
};

// Accumulating stores (scatter-adds): a parallel loop's threads may add to one element at once.
GC_INLINE void gc_accumulate(float* p, float v) { atomicAdd(p, v); }
GC_INLINE void gc_accumulate(double* p, double v) { atomicAdd(p, v); }
GC_INLINE void gc_accumulate(__half* p, __half v) { atomicAdd(p, v); }
GC_INLINE void gc_accumulate(int* p, int v) { atomicAdd(p, v); }
GC_INLINE void gc_accumulate(long long* p, long long v) {  // two's complement: wraps around
    atomicAdd((unsigned long long*)p, (unsigned long long)v);
}
GC_INLINE void gc_accumulate(unsigned int* p, unsigned int v) { atomicAdd(p, v); }
GC_INLINE void gc_accumulate(unsigned long long* p, unsigned long long v) { atomicAdd(p, v); }
// 8- and 16-bit integers have no atomicAdd: swap the sum into the aligned word that holds *p
// until no other thread came between; the sum wraps around within the element's bits
template <typename T> GC_INLINE void gc_accumulate_narrow(T* p, T v) {
    unsigned int* word = (unsigned int*)((size_t)p & ~(size_t)3);
    const unsigned int shift = (unsigned int)((size_t)p & 3) * 8u;
    const unsigned int mask = (sizeof(T) == 1 ? 0xFFu : 0xFFFFu) << shift;
    unsigned int seen = *word, assumed;
    do {
        assumed = seen;
        const unsigned int sum = (assumed & mask) + ((unsigned int)v << shift);
        seen = atomicCAS(word, assumed, (assumed & ~mask) | (sum & mask));
    } while (seen != assumed);
}
GC_INLINE void gc_accumulate(signed char* p, signed char v) { gc_accumulate_narrow(p, v); }
GC_INLINE void gc_accumulate(unsigned char* p, unsigned char v) { gc_accumulate_narrow(p, v); }
GC_INLINE void gc_accumulate(short* p, short v) { gc_accumulate_narrow(p, v); }
GC_INLINE void gc_accumulate(unsigned short* p, unsigned short v) { gc_accumulate_narrow(p, v); }
GC_INLINE void gc_accumulate(unsigned char* p, bool v) { if (v) *p = 1; }  // or: all write 1
""" % (THREADS, ERROR_WORDS, GRID_BLOCKS, GRID_BLOCKS, GRID_BLOCKS, SPLIT_COUNTS)

BLOCK_COMBINE = {  # (op, kind) -> the functor combining two threads' accumulators
    ("sum", "float"): "gc_plus", ("prod", "float"): "gc_times",
    ("sum", "int"): "gc_wrapping_plus", ("prod", "int"): "gc_wrapping_times",
    ("sum", "bool"): "gc_any", ("prod", "bool"): "gc_all",
    **{(op, kind): f"gc_{op}" for op in ("max", "min") for kind in ("float", "int", "bool")},
    **{("argmax", kind): "gc_arg_best<true>" for kind in ("float", "int", "bool")},
    **{("argmin", kind): "gc_arg_best<false>" for kind in ("float", "int", "bool")},
}


def _kind(dtype):
    return "float" if dtype in FLOATS else "bool" if dtype == "bool" else "int"


def accumulator(op, dtype):
    """The C type of the accumulator of reduction `op` of `dtype` values."""
    return REGISTER[ir.accumulator(op, dtype)]


def narrowing(op, dtype):
    """How an accumulator becomes the result: a format of it, or None when it is the result."""
    if accumulator(op, dtype) == REGISTER[dtype]:
        return None
    return "__half2float(__double2half({}))" if dtype == "float16" else "(float){}"


def start(op, dtype):
    """The accumulator's first value (argmax/argmin: the best value's), a C literal."""
    return literal(ir.reduction_start(op, dtype), ir.accumulator(op, dtype))


def combine(op, dtype, acc, v):
    """The update of accumulator `acc` by value `v`: the reduction's combining op, in the
    accumulator's dtype."""
    update = expression(ir.REDUCTIONS[op].combine, ir.accumulator(op, dtype), [acc, v])
    return f"{acc} = {update};"


def accumulate(pointer, value, dtype):
    """The C statement of an accumulating store of `value` (a register value of `dtype`) at
    `pointer`. A bool stays a bool: its storage type is uint8's, whose accumulation adds."""
    return f"gc_accumulate({pointer}, {value if dtype == 'bool' else to_storage(value, dtype)});"


def block_combine(op, dtype):
    return BLOCK_COMBINE[op, _kind(dtype)]
