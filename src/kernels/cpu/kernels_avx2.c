/* kernels_avx2.c — the "avx2" kernel set: AVX2 + FMA + F16C. The kernels themselves are
 * in kernels_x86_impl.h (shared with the AVX-512 set); here they are instantiated without
 * VNNI (byte dot products via maddubs + madd) and with 4x2 gemm tiles, which fit the 16
 * ymm registers. CMake compiles this file with -mavx2 -mfma -mf16c; kernels.c calls
 * pv_kernels_avx2_fill only after detection says the CPU runs it. */
#define PV_X86_VNNI 0
#define PV_X86_AVX512 0
#define PV_TR 4
#define PV_TT 2
#include "kernels_x86_impl.h"

void pv_kernels_avx2_fill(pv_kernel_set *ks) { pv_x86_fill(ks); }
