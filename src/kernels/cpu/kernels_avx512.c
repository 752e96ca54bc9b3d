/* kernels_avx512.c — the "avx512" kernel set: AVX-512 F/BW/VL/DQ + VNNI. The kernels are
 * in kernels_x86_impl.h (shared with the AVX2 set); compiled here they use vpdpbusd /
 * vpdpwssd for the byte dot products and, through AVX-512VL, 32 vector registers, which
 * allow 4x4 gemm tiles (each weight block loaded once for four tokens). CMake compiles this
 * file with the AVX-512 flags; kernels.c calls pv_kernels_avx512_fill only after detection
 * says the CPU (and OS) runs it. */
#define PV_X86_VNNI 1
#define PV_X86_AVX512 1
#define PV_TR 4
#define PV_TT 4
#include "kernels_x86_impl.h"

void pv_kernels_avx512_fill(pv_kernel_set *ks) { pv_x86_fill(ks); }
