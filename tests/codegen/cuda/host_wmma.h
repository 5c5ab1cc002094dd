// host emulation of the nvcuda::wmma API graphc's kernels use (it stands where they include
// <mma.h>). A fragment holds its whole tile in every lane of the warp, and lane 0 computes and
// stores the warp's products (the others load alike and skip the work, so that emulated
// blocks of 256 threads stay quick). Products are float32 sums over inputs taken as the
// tensor cores take them: float16 and bfloat16 exactly, tf32 as a float whose 13 low mantissa
// bits are ignored (kernels round their inputs with __float_to_tf32 first).
#include <cuda_bf16.h>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}

template <typename Use, int M, int N, int K> struct gc_shape;
template <int M, int N, int K> struct gc_shape<matrix_a, M, N, K> { enum { rows = M, cols = K }; };
template <int M, int N, int K> struct gc_shape<matrix_b, M, N, K> { enum { rows = K, cols = N }; };
template <int M, int N, int K> struct gc_shape<accumulator, M, N, K> {
    enum { rows = M, cols = N };
};
template <typename T> struct gc_element { typedef T type; };
template <> struct gc_element<precision::tf32> { typedef float type; };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    enum { rows = gc_shape<Use, M, N, K>::rows, cols = gc_shape<Use, M, N, K>::cols,
           num_elements = rows * cols };
    typename gc_element<T>::type x[num_elements];  // [row][column]
};

static bool gc_lane_zero() { return threadIdx.x % 32 == 0; }

template <typename Use, int M, int N, int K, typename T, typename Layout, typename E>
static void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const E* p, unsigned ldm) {
    typedef fragment<Use, M, N, K, T, Layout> F;
    const bool rows_in_memory = is_same<Layout, row_major>::value;
    for (int r = 0; r < F::rows; ++r)
        for (int c = 0; c < F::cols; ++c)
            f.x[r * F::cols + c] = rows_in_memory ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K, typename T>
static void fill_fragment(fragment<accumulator, M, N, K, T>& f, T value) {
    for (int i = 0; i < M * N; ++i) f.x[i] = value;
}

static float gc_tensor_input(__half x) { return __half2float(x); }
static float gc_tensor_input(__nv_bfloat16 x) { return __bfloat162float(x); }
static float gc_tensor_input(float x) {  // tf32: the units read 10 bits of mantissa
    unsigned int bits;
    memcpy(&bits, &x, 4);
    bits &= 0xffffe000u;
    memcpy(&x, &bits, 4);
    return x;
}

template <int M, int N, int K, typename T, typename LA, typename LB>
static void mma_sync(fragment<accumulator, M, N, K, float>& d,
                     const fragment<matrix_a, M, N, K, T, LA>& a,
                     const fragment<matrix_b, M, N, K, T, LB>& b,
                     const fragment<accumulator, M, N, K, float>& c) {
    if (!gc_lane_zero()) return;
    float out[M * N];
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            float sum = c.x[i * N + j];
            for (int k = 0; k < K; ++k)  // products of these inputs are exact in float32
                sum += gc_tensor_input(a.x[i * K + k]) * gc_tensor_input(b.x[k * N + j]);
            out[i * N + j] = sum;
        }
    memcpy(d.x, out, sizeof out);
}

template <int M, int N, int K>
static void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f,
                              unsigned ldm, layout_t layout) {
    if (!gc_lane_zero()) return;
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
            (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * N + c];
}

// cvt.rna.tf32.f32: the nearest tf32, ties away from zero (in a float's 32 bits)
static float __float_to_tf32(float x) {
    if (!isfinite(x)) return x;
    unsigned int bits;
    memcpy(&bits, &x, 4);
    bits = (bits + 0x1000u) & 0xffffe000u;
    memcpy(&x, &bits, 4);
    return x;
}
}  // namespace wmma
}  // namespace nvcuda
