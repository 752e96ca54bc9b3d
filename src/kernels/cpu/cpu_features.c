/* cpu_features.c — x86 feature detection, done once: cpuid says what the core implements
 * and xgetbv says whether the OS saves the wider register state (YMM for AVX2, ZMM and
 * opmask for AVX-512); a feature counts only when both agree. Compiled without ISA flags,
 * so it is safe to call on any x86-64 CPU. On other architectures every flag is false. */
#include <pthread.h>

#include "../pv_kernels_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0 via inline asm: the _xgetbv intrinsic would need -mxsave on this file. */
static bool g_avx512dq;

static uint64_t pv_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void pv_cpu_detect(pv_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    const uint64_t xcr0 = pv_xgetbv0();
    const bool ymm_ok = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    const bool zmm_ok = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!ymm_ok) return;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    f->fma = fma;
    f->f16c = f16c;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
        /* the struct has no DQ flag; the kernels use DQ, so keep it beside (bit 17) */
        g_avx512dq = (b >> 17) & 1;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f->avx512bf16 = (a1 >> 5) & 1;
        (void)b1;
        (void)c1;
        (void)d1;
    }
}
#else
static bool g_avx512dq;
static void pv_cpu_detect(pv_cpu_features *f) { (void)f; }
#endif

static pv_cpu_features g_features;
static pthread_once_t g_features_once = PTHREAD_ONCE_INIT;
static void pv_cpu_features_init(void) { pv_cpu_detect(&g_features); }

const pv_cpu_features *pv_cpu_features_get(void) {
    pthread_once(&g_features_once, pv_cpu_features_init);
    return &g_features;
}

bool pv_cpu_runs_avx2(const pv_cpu_features *f) { return f->avx2 && f->fma && f->f16c; }

bool pv_cpu_runs_avx512(const pv_cpu_features *f) {
    return pv_cpu_runs_avx2(f) && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni &&
           g_avx512dq;
}
