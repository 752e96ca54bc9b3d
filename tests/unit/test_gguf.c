/* test_gguf.c — GGUF reader/writer tests on a small synthetic file. The file is written
 * with pv_gguf_writer (every value type, a string array with explicit lengths and an
 * embedded NUL, arrays of arrays, tensors of five types including IQ2_XXS, which is known
 * but unsupported), and its byte layout is computed independently here from the GGUF
 * specification (the kv_specs / t_specs tables below give every payload size by hand).
 * That layout is the oracle for: the round trip (every value and tensor byte reads back),
 * truncation at every byte and at every section boundary (field and problem named),
 * byte patches that forge unknown types, huge counts and lengths, duplicates, overflowing
 * dims, bad offsets, bad alignment, bad magic and versions, and a deterministic random
 * byte-flip loop that must never crash (run under ASan/UBSan). */
#include "pv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/pv_gguf.h"

#define NKV 23
#define NT 5
#define ALIGN 64

/* ---- the oracle: what the small file holds and how many bytes each part takes ---- */

typedef struct {
    const char *key;
    uint32_t type;
    size_t payload; /* bytes of the value after its u32 type */
} kv_spec;

static const kv_spec kv_specs[NKV] = {
    {"general.alignment", PV_VAL_U32, 4},
    {"general.architecture", PV_VAL_STRING, 8 + 5},
    {"test.u8", PV_VAL_U8, 1},
    {"test.i8", PV_VAL_I8, 1},
    {"test.u16", PV_VAL_U16, 2},
    {"test.i16", PV_VAL_I16, 2},
    {"test.u32", PV_VAL_U32, 4},
    {"test.i32", PV_VAL_I32, 4},
    {"test.f32", PV_VAL_F32, 4},
    {"test.bool", PV_VAL_BOOL, 1},
    {"test.u64", PV_VAL_U64, 8},
    {"test.i64", PV_VAL_I64, 8},
    {"test.f64", PV_VAL_F64, 8},
    {"test.arr_u32", PV_VAL_ARRAY, 4 + 8 + 4 * 4},
    {"test.arr_f32", PV_VAL_ARRAY, 4 + 8 + 3 * 4},
    {"test.arr_i16", PV_VAL_ARRAY, 4 + 8 + 2 * 2},
    /* "a", "", "x\0y", "h\xc3\xa9llo" */
    {"test.tokens", PV_VAL_ARRAY, 4 + 8 + (8 + 1) + (8 + 0) + (8 + 3) + (8 + 6)},
    /* [[1,2,3], [], [-7]] of i32 */
    {"test.nested", PV_VAL_ARRAY, 4 + 8 + (4 + 8 + 12) + (4 + 8 + 0) + (4 + 8 + 4)},
    /* [["ab","c"], ["d"]] */
    {"test.nested_str", PV_VAL_ARRAY, 4 + 8 + (4 + 8 + (8 + 2) + (8 + 1)) + (4 + 8 + (8 + 1))},
    {"test.empty", PV_VAL_ARRAY, 4 + 8},
    {"test.dup_a", PV_VAL_STRING, 8 + 5},
    {"test.dup_b", PV_VAL_STRING, 8 + 6},
    {"general.name", PV_VAL_STRING, 8 + 4},
};

enum {
    KV_ALIGN = 0,
    KV_ARCH = 1,
    KV_U8 = 2,
    KV_ARR_U32 = 13,
    KV_TOKENS = 16,
    KV_NESTED = 17,
    KV_NESTED_STR = 18,
    KV_DUP_A = 20,
    KV_DUP_B = 21
};

typedef struct {
    const char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    size_t nbytes; /* by hand: elements / block * block bytes (ggml's block sizes) */
} t_spec;

static const t_spec t_specs[NT] = {
    {"tok.f32", PV_TYPE_F32, 2, {4, 3, 1, 1}, 4 * 3 * 4},
    {"blk.0.q8", PV_TYPE_Q8_0, 2, {64, 2, 1, 1}, (64 / 32) * 34 * 2},
    {"blk.0.q4", PV_TYPE_Q4_0, 1, {32, 1, 1, 1}, 18},
    {"blk.0.iq2", 16 /* IQ2_XXS: 2 + 256/8*2 bytes */, 1, {256, 1, 1, 1}, 66},
    {"blk.0.f16", PV_TYPE_F16, 3, {8, 2, 2, 1}, 8 * 2 * 2 * 2},
};

typedef struct {
    size_t kv_start[NKV], kv_type_off[NKV], kv_end[NKV];
    size_t ti_start[NT], ti_ndims_off[NT], ti_dims_off[NT], ti_type_off[NT], ti_offset_off[NT],
        ti_end[NT];
    size_t data_start, data_off[NT], data_end, file_size;
} layout;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static void layout_compute(layout *L) {
    size_t pos = 24; /* magic, version, n_tensors, n_kv */
    for (int i = 0; i < NKV; i++) {
        L->kv_start[i] = pos;
        pos += 8 + strlen(kv_specs[i].key);
        L->kv_type_off[i] = pos;
        pos += 4 + kv_specs[i].payload;
        L->kv_end[i] = pos;
    }
    for (int j = 0; j < NT; j++) {
        L->ti_start[j] = pos;
        pos += 8 + strlen(t_specs[j].name);
        L->ti_ndims_off[j] = pos;
        pos += 4;
        L->ti_dims_off[j] = pos;
        pos += 8 * (size_t)t_specs[j].n_dims;
        L->ti_type_off[j] = pos;
        pos += 4;
        L->ti_offset_off[j] = pos;
        pos += 8;
        L->ti_end[j] = pos;
    }
    L->data_start = round_up(pos, ALIGN);
    size_t off = 0;
    for (int j = 0; j < NT; j++) {
        L->data_off[j] = off;
        off = round_up(off + t_specs[j].nbytes, ALIGN);
    }
    L->data_end = L->data_start + L->data_off[NT - 1] + t_specs[NT - 1].nbytes;
    L->file_size = L->data_start + off;
}

/* ---- the values written ---- */
static const char *const tok_strs[4] = {"a", "", "x\0y", "h\xc3\xa9llo"};
static const uint64_t tok_lens[4] = {1, 0, 3, 6};
static const uint32_t arr_u32[4] = {1, 2, 3, 0xFFFFFFFFu};
static const float arr_f32[3] = {0.5f, -1.0f, 3.25f};
static const int16_t arr_i16[2] = {-5, 7};
static const int32_t nest0[3] = {1, 2, 3}, nest2[1] = {-7};

static uint8_t tensor_byte(int j, size_t i) { return (uint8_t)(j * 31 + (int)(i * 7) + 1); }

static char g_dir[64];
static char g_small[128];    /* the small file */
static char g_small_nt[128]; /* the same kvs, no tensors */
static uint8_t *g_bytes;
static size_t g_size;
static layout g_L;

static void set_v(pv_gguf_writer *g, const char *key, pv_value v) {
    pv_error err = {0};
    assert_int_equal(pv_gguf_writer_set_value(g, key, &v, &err), PV_OK);
}

static void write_small(const char *path, bool with_tensors) {
    pv_gguf_writer *g = pv_gguf_writer_new();
    assert_non_null(g);
    pv_error err = {0};
    pv_gguf_writer_set_alignment(g, ALIGN);
    pv_gguf_writer_set_str(g, "general.architecture", "llama");
    set_v(g, "test.u8", (pv_value){.type = PV_VAL_U8, .u = 200});
    set_v(g, "test.i8", (pv_value){.type = PV_VAL_I8, .i = -100});
    set_v(g, "test.u16", (pv_value){.type = PV_VAL_U16, .u = 60000});
    set_v(g, "test.i16", (pv_value){.type = PV_VAL_I16, .i = -30000});
    pv_gguf_writer_set_u32(g, "test.u32", 4000000000u);
    pv_gguf_writer_set_i32(g, "test.i32", -2000000000);
    pv_gguf_writer_set_f32(g, "test.f32", 1.5f);
    pv_gguf_writer_set_bool(g, "test.bool", true);
    pv_gguf_writer_set_u64(g, "test.u64", (1ull << 40) + 3);
    set_v(g, "test.i64", (pv_value){.type = PV_VAL_I64, .i = -(1ll << 40)});
    set_v(g, "test.f64", (pv_value){.type = PV_VAL_F64, .f = -2.25});
    pv_gguf_writer_set_arr(g, "test.arr_u32", PV_VAL_U32, arr_u32, 4);
    pv_gguf_writer_set_arr(g, "test.arr_f32", PV_VAL_F32, arr_f32, 3);
    pv_gguf_writer_set_arr(g, "test.arr_i16", PV_VAL_I16, arr_i16, 2);
    pv_gguf_writer_set_arr_strn(g, "test.tokens", tok_strs, tok_lens, 4);
    pv_value inner[3] = {
        {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_I32, .n = 3, .raw = (const uint8_t *)nest0}},
        {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_I32, .n = 0}},
        {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_I32, .n = 1, .raw = (const uint8_t *)nest2}},
    };
    set_v(g, "test.nested",
          (pv_value){.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_ARRAY, .n = 3, .items = inner}});
    pv_value s0[2] = {{.type = PV_VAL_STRING, .s = {"ab", 2}},
                      {.type = PV_VAL_STRING, .s = {"c", 1}}};
    pv_value s1[1] = {{.type = PV_VAL_STRING, .s = {"d", 1}}};
    pv_value inner_s[2] = {
        {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_STRING, .n = 2, .items = s0}},
        {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_STRING, .n = 1, .items = s1}},
    };
    set_v(
        g, "test.nested_str",
        (pv_value){.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_ARRAY, .n = 2, .items = inner_s}});
    pv_gguf_writer_set_arr(g, "test.empty", PV_VAL_U8, NULL, 0);
    pv_gguf_writer_set_str(g, "test.dup_a", "first");
    pv_gguf_writer_set_str(g, "test.dup_b", "second");
    pv_gguf_writer_set_str(g, "general.name", "tiny");
    if (with_tensors) {
        for (int j = 0; j < NT; j++) {
            uint8_t *d = malloc(t_specs[j].nbytes);
            assert_non_null(d);
            for (size_t i = 0; i < t_specs[j].nbytes; i++)
                d[i] = tensor_byte(j, i);
            pv_status st = pv_gguf_writer_add_tensor(g, t_specs[j].name, (pv_type)t_specs[j].type,
                                                     t_specs[j].n_dims, t_specs[j].ne, d, &err);
            free(d); /* add_tensor copies */
            assert_int_equal(st, PV_OK);
        }
    }
    pv_status st = pv_gguf_writer_write(g, path, &err);
    if (st != PV_OK) fail_msg("write: %s", err.msg);
    pv_gguf_writer_free(g);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/pv_gguf_test_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_small, sizeof g_small, "%s/small.gguf", g_dir);
    snprintf(g_small_nt, sizeof g_small_nt, "%s/small_nt.gguf", g_dir);
    write_small(g_small, true);
    write_small(g_small_nt, false);
    g_bytes = (uint8_t *)pv_test_read_file(g_small, &g_size);
    if (!g_bytes) return -1;
    layout_compute(&g_L);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(g_bytes);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

#define assert_has(hay, needle)                                                                    \
    do {                                                                                           \
        if (!strstr((hay), (needle))) fail_msg("'%s' lacks '%s'", (hay), (needle));                \
    } while (0)

/* Parses an exact-size heap copy of buf[0..n) (so ASan sees any read past n). */
static pv_status parse_copy(const uint8_t *buf, size_t n, pv_error *err, pv_weights **out) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, buf, n);
    pv_weights *w = NULL;
    pv_status st = pv_gguf_parse(g_small, copy, n, &w, err);
    if (out && st == PV_OK) {
        *out = w; /* caller frees w, then the copy: keep copy alive via map pointer */
        return st;
    }
    pv_weights_free(w);
    free(copy);
    return st;
}

static void free_parsed(pv_weights *w) {
    void *map = (void *)w->map;
    pv_weights_free(w);
    free(map);
}

/* Patches a little-endian value of `width` bytes at `off` in a copy of the small file,
 * parses it and checks that it fails with both substrings in the message. */
static void expect_patch(size_t off, uint64_t value, int width, const char *field,
                         const char *problem) {
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    memcpy(b, g_bytes, g_size);
    memcpy(b + off, &value, (size_t)width);
    pv_error err = {0};
    pv_status st = parse_copy(b, g_size, &err, NULL);
    free(b);
    if (st == PV_OK) fail_msg("patch at %zu (%s / %s) was accepted", off, field, problem);
    assert_int_equal(err.status, st);
    assert_has(err.msg, g_small);
    assert_has(err.msg, field);
    assert_has(err.msg, problem);
}

static void expect_fail_bytes(const uint8_t *b, size_t n, const char *field, const char *problem) {
    pv_error err = {0};
    pv_status st = parse_copy(b, n, &err, NULL);
    if (st == PV_OK) fail_msg("accepted (%s / %s)", field, problem);
    assert_has(err.msg, g_small);
    assert_has(err.msg, field);
    assert_has(err.msg, problem);
}

/* ---- tests ---- */

static void test_writer_layout_matches_spec(void **state) {
    (void)state;
    assert_int_equal(g_size, g_L.file_size);
    uint32_t u32;
    uint64_t u64;
    memcpy(&u32, g_bytes, 4);
    assert_int_equal(u32, 0x46554747u);
    memcpy(&u32, g_bytes + 4, 4);
    assert_int_equal(u32, 3);
    memcpy(&u64, g_bytes + 8, 8);
    assert_int_equal(u64, NT);
    memcpy(&u64, g_bytes + 16, 8);
    assert_int_equal(u64, NKV);
    for (int i = 0; i < NKV; i++) {
        memcpy(&u64, g_bytes + g_L.kv_start[i], 8);
        assert_int_equal(u64, strlen(kv_specs[i].key));
        assert_memory_equal(g_bytes + g_L.kv_start[i] + 8, kv_specs[i].key, u64);
        memcpy(&u32, g_bytes + g_L.kv_type_off[i], 4);
        assert_int_equal(u32, kv_specs[i].type);
    }
    for (int j = 0; j < NT; j++) {
        memcpy(&u64, g_bytes + g_L.ti_offset_off[j], 8);
        assert_int_equal(u64, g_L.data_off[j]);
        memcpy(&u32, g_bytes + g_L.ti_type_off[j], 4);
        assert_int_equal(u32, t_specs[j].type);
        for (size_t i = 0; i < t_specs[j].nbytes; i++)
            assert_int_equal(g_bytes[g_L.data_start + g_L.data_off[j] + i], tensor_byte(j, i));
    }
}

static void test_round_trip(void **state) {
    (void)state;
    pv_weights *w = NULL;
    pv_error err = {0};
    pv_status st = pv_weights_open(g_small, &w, &err);
    if (st != PV_OK) fail_msg("%s", err.msg);
    assert_string_equal(w->format, "gguf");
    assert_string_equal(w->path, g_small);
    assert_int_equal(w->version, 3);
    assert_int_equal(w->alignment, ALIGN);
    assert_int_equal(w->map_size, g_size);
    assert_int_equal(w->n_kv, NKV);
    assert_int_equal(w->n_tensors, NT);
    assert_int_equal(pv_gguf_data_offset(w), g_L.data_start);
    for (int i = 0; i < NKV; i++) {
        assert_true(pv_str_eq(w->kv[i].key, kv_specs[i].key));
        assert_int_equal(w->kv[i].value.type, kv_specs[i].type);
        assert_ptr_equal(pv_weights_meta(w, kv_specs[i].key), &w->kv[i].value);
    }
    const pv_value *v;
    assert_int_equal(pv_weights_meta(w, "general.alignment")->u, ALIGN);
    assert_true(pv_str_eq(pv_weights_meta(w, "general.architecture")->s, "llama"));
    assert_int_equal(pv_weights_meta(w, "test.u8")->u, 200);
    assert_int_equal(pv_weights_meta(w, "test.i8")->i, -100);
    assert_int_equal(pv_weights_meta(w, "test.u16")->u, 60000);
    assert_int_equal(pv_weights_meta(w, "test.i16")->i, -30000);
    assert_int_equal(pv_weights_meta(w, "test.u32")->u, 4000000000u);
    assert_int_equal(pv_weights_meta(w, "test.i32")->i, -2000000000);
    assert_true(pv_weights_meta(w, "test.f32")->f == 1.5);
    assert_true(pv_weights_meta(w, "test.bool")->b);
    assert_int_equal(pv_weights_meta(w, "test.u64")->u, (1ull << 40) + 3);
    assert_true(pv_weights_meta(w, "test.i64")->i == -(1ll << 40));
    assert_true(pv_weights_meta(w, "test.f64")->f == -2.25);
    v = pv_weights_meta(w, "test.arr_u32");
    assert_int_equal(v->arr.type, PV_VAL_U32);
    assert_int_equal(v->arr.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pv_value_arr_u32(v, (uint64_t)i), arr_u32[i]);
    v = pv_weights_meta(w, "test.arr_f32");
    assert_int_equal(v->arr.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(pv_value_arr_f32(v, (uint64_t)i) == arr_f32[i]);
    v = pv_weights_meta(w, "test.arr_i16");
    assert_int_equal(v->arr.type, PV_VAL_I16);
    assert_int_equal(pv_value_arr_i32(v, 0), -5);
    assert_int_equal(pv_value_arr_i32(v, 1), 7);
    v = pv_weights_meta(w, "test.tokens");
    assert_int_equal(v->arr.type, PV_VAL_STRING);
    assert_int_equal(v->arr.n, 4);
    for (int i = 0; i < 4; i++) {
        pv_str s = pv_value_arr_str(v, (uint64_t)i);
        assert_int_equal(s.len, tok_lens[i]);
        if (s.len) assert_memory_equal(s.ptr, tok_strs[i], s.len);
    }
    v = pv_weights_meta(w, "test.nested");
    assert_int_equal(v->arr.type, PV_VAL_ARRAY);
    assert_int_equal(v->arr.n, 3);
    assert_int_equal(v->arr.items[0].arr.type, PV_VAL_I32);
    assert_int_equal(v->arr.items[0].arr.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_value_arr_i32(&v->arr.items[0], (uint64_t)i), nest0[i]);
    assert_int_equal(v->arr.items[1].arr.n, 0);
    assert_int_equal(v->arr.items[2].arr.n, 1);
    assert_int_equal(pv_value_arr_i32(&v->arr.items[2], 0), -7);
    v = pv_weights_meta(w, "test.nested_str");
    assert_int_equal(v->arr.n, 2);
    assert_true(pv_str_eq(pv_value_arr_str(&v->arr.items[0], 0), "ab"));
    assert_true(pv_str_eq(pv_value_arr_str(&v->arr.items[0], 1), "c"));
    assert_true(pv_str_eq(pv_value_arr_str(&v->arr.items[1], 0), "d"));
    v = pv_weights_meta(w, "test.empty");
    assert_int_equal(v->arr.type, PV_VAL_U8);
    assert_int_equal(v->arr.n, 0);
    assert_true(pv_str_eq(pv_weights_meta(w, "test.dup_b")->s, "second"));
    assert_true(pv_str_eq(pv_weights_meta(w, "general.name")->s, "tiny"));

    const uint8_t *map = w->map;
    for (int j = 0; j < NT; j++) {
        const pv_tensor_desc *t = &w->tensors[j];
        assert_true(pv_str_eq(t->name, t_specs[j].name));
        assert_ptr_equal(pv_weights_tensor(w, t_specs[j].name), t);
        assert_int_equal(t->type, t_specs[j].type);
        assert_int_equal(t->n_dims, t_specs[j].n_dims);
        for (int d = 0; d < 4; d++)
            assert_int_equal(t->ne[d], t_specs[j].ne[d]);
        assert_int_equal(t->nbytes, t_specs[j].nbytes);
        assert_ptr_equal(t->data, map + g_L.data_start + g_L.data_off[j]);
        const uint8_t *d = t->data;
        for (size_t i = 0; i < t->nbytes; i++)
            assert_int_equal(d[i], tensor_byte(j, i));
    }
    /* IQ2_XXS is known but not supported: it loads here, the model layer refuses it */
    const pv_type_traits *tr = pv_type_traits_get(w->tensors[3].type);
    assert_non_null(tr);
    assert_false(tr->supported);
    assert_null(pv_weights_tensor(w, "blk.0"));
    assert_null(pv_weights_meta(w, "test"));
    pv_weights_free(w);
}

static void test_getters(void **state) {
    (void)state;
    pv_weights *w = NULL;
    pv_error err = {0};
    assert_int_equal(pv_weights_open(g_small, &w, &err), PV_OK);
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    assert_true(pv_meta_get_u32(w, "test.u8", &u32));
    assert_int_equal(u32, 200);
    assert_true(pv_meta_get_u32(w, "test.u32", &u32));
    assert_int_equal(u32, 4000000000u);
    assert_false(pv_meta_get_u32(w, "test.i8", &u32));  /* negative */
    assert_false(pv_meta_get_u32(w, "test.u64", &u32)); /* 2^40+3 does not fit */
    assert_false(pv_meta_get_u32(w, "test.f32", &u32)); /* not an integer */
    assert_false(pv_meta_get_u32(w, "absent.key", &u32));
    assert_true(pv_meta_get_i64(w, "test.i64", &i64));
    assert_true(i64 == -(1ll << 40));
    assert_true(pv_meta_get_i64(w, "test.u64", &i64));
    assert_true(i64 == (1ll << 40) + 3);
    assert_true(pv_meta_get_i64(w, "test.i16", &i64));
    assert_true(i64 == -30000);
    assert_false(pv_meta_get_i64(w, "general.name", &i64));
    assert_true(pv_meta_get_f32(w, "test.f64", &f));
    assert_true(f == -2.25f);
    assert_true(pv_meta_get_f32(w, "test.i32", &f));
    assert_true(f == -2000000000.0f);
    assert_true(pv_meta_get_f32(w, "test.f32", &f));
    assert_true(f == 1.5f);
    assert_false(pv_meta_get_f32(w, "test.tokens", &f));
    assert_true(pv_meta_get_bool(w, "test.bool", &b));
    assert_true(b);
    assert_false(pv_meta_get_bool(w, "test.u8", &b));
    char *s = pv_meta_get_strdup(w, "general.architecture");
    assert_string_equal(s, "llama");
    free(s);
    assert_null(pv_meta_get_strdup(w, "test.u8"));
    assert_null(pv_meta_get_strdup(w, "absent"));
    const pv_value *a = pv_meta_get_arr(w, "test.arr_u32");
    assert_non_null(a);
    assert_int_equal(pv_value_arr_i32(a, 3), -1); /* 0xFFFFFFFF as i32 */
    assert_int_equal(pv_value_arr_u32(a, 4), 0);  /* out of range: 0, no crash */
    assert_true(pv_value_arr_f32(a, 2) == 3.0f);
    assert_null(pv_meta_get_arr(w, "test.u8"));
    a = pv_meta_get_arr(w, "test.tokens");
    assert_int_equal(pv_value_arr_str(a, 9).len, 0);
    assert_int_equal(pv_value_arr_u32(a, 0), 0); /* wrong element type: 0 */
    pv_str st = {"abc", 3};
    assert_true(pv_str_eq(st, "abc"));
    assert_false(pv_str_eq(st, "ab"));
    assert_false(pv_str_eq(st, "abd"));
    assert_string_equal(pv_val_type_name(PV_VAL_STRING), "string");
    assert_int_equal(pv_val_type_size(PV_VAL_F64), 8);
    assert_null(pv_val_type_name(13));
    pv_weights_free(w);
}

/* Every strict prefix up to the end of the last tensor's data is malformed. */
static void test_truncate_every_byte(void **state) {
    (void)state;
    assert_true(g_L.data_end <= g_size);
    for (size_t k = 0; k < g_L.data_end; k++) {
        pv_error err = {0};
        pv_status st = parse_copy(g_bytes, k, &err, NULL);
        if (st == PV_OK) fail_msg("prefix of %zu bytes accepted", k);
        assert_int_equal(err.status, st);
        assert_has(err.msg, g_small);
    }
    /* bytes after the last tensor's data are padding: a file cut there is complete */
    for (size_t k = g_L.data_end; k <= g_size; k++) {
        pv_error err = {0};
        pv_weights *w = NULL;
        pv_status st = parse_copy(g_bytes, k, &err, &w);
        if (st != PV_OK) fail_msg("%s", err.msg);
        free_parsed(w);
    }
}

/* At each section boundary the message names the field that was cut. */
static void test_truncate_boundaries(void **state) {
    (void)state;
    char field[128], problem[160];
    const char *hdr[4] = {"header magic", "header version", "header n_tensors", "header n_kv"};
    const size_t hdr_off[4] = {0, 4, 8, 16}, hdr_need[4] = {4, 4, 8, 8};
    for (int i = 0; i < 4; i++) {
        snprintf(problem, sizeof problem,
                 ": truncated: needs %zu bytes at offset %zu, file is %zu bytes", hdr_need[i],
                 hdr_off[i], hdr_off[i]);
        expect_fail_bytes(g_bytes, hdr_off[i], hdr[i], problem);
    }
    for (int i = 0; i < NKV; i++) {
        size_t k = g_L.kv_start[i];
        snprintf(field, sizeof field, ": kv[%d] key: ", i);
        snprintf(problem, sizeof problem,
                 "truncated: needs 8 bytes at offset %zu, file is %zu bytes", k, k);
        expect_fail_bytes(g_bytes, k, field, problem);
        k += 8; /* key length read, key bytes missing */
        snprintf(problem, sizeof problem, "truncated: needs %zu bytes at offset %zu",
                 strlen(kv_specs[i].key), k);
        expect_fail_bytes(g_bytes, k, field, problem);
        snprintf(field, sizeof field, ": kv[%d] key '%s': ", i, kv_specs[i].key);
        k = g_L.kv_type_off[i];
        snprintf(problem, sizeof problem,
                 "truncated: needs 4 bytes at offset %zu, file is %zu bytes", k, k);
        expect_fail_bytes(g_bytes, k, field, problem);
        k += 4; /* value missing */
        uint32_t t = kv_specs[i].type;
        size_t need = t == PV_VAL_STRING ? 8 : t == PV_VAL_ARRAY ? 4 : kv_specs[i].payload;
        snprintf(problem, sizeof problem, "truncated: needs %zu bytes at offset %zu", need, k);
        expect_fail_bytes(g_bytes, k, field, problem);
        /* the last byte of the value missing (inside an array the element is named too) */
        snprintf(field, sizeof field, ": kv[%d] key '%s'", i, kv_specs[i].key);
        expect_fail_bytes(g_bytes, g_L.kv_end[i] - 1, field, "truncated");
    }
    for (int j = 0; j < NT; j++) {
        snprintf(field, sizeof field, ": tensor[%d] name: ", j);
        snprintf(problem, sizeof problem, "truncated: needs 8 bytes at offset %zu",
                 g_L.ti_start[j]);
        expect_fail_bytes(g_bytes, g_L.ti_start[j], field, problem);
        snprintf(field, sizeof field, ": tensor[%d] '%s': ", j, t_specs[j].name);
        const size_t offs[4] = {g_L.ti_ndims_off[j], g_L.ti_dims_off[j], g_L.ti_type_off[j],
                                g_L.ti_offset_off[j]};
        const size_t needs[4] = {4, 8, 4, 8};
        for (int f = 0; f < 4; f++) {
            snprintf(problem, sizeof problem, "truncated: needs %zu bytes at offset %zu", needs[f],
                     offs[f]);
            expect_fail_bytes(g_bytes, offs[f], field, problem);
        }
    }
    /* cut after the infos, in the padding, at each tensor's start and last byte */
    snprintf(field, sizeof field, ": tensor[0] '%s': ", t_specs[0].name);
    expect_fail_bytes(g_bytes, g_L.ti_end[NT - 1], field, "data past end of file");
    expect_fail_bytes(g_bytes, g_L.data_start - 1, field, "data past end of file");
    for (int j = 0; j < NT; j++) {
        snprintf(field, sizeof field, ": tensor[%d] '%s': ", j, t_specs[j].name);
        size_t start = g_L.data_start + g_L.data_off[j];
        expect_fail_bytes(g_bytes, start, field, "data past end of file");
        expect_fail_bytes(g_bytes, start + t_specs[j].nbytes - 1, field, "data past end of file");
    }
}

/* Truncated copies on disk go through pv_weights_open (mmap path) the same way. */
static void test_truncated_files(void **state) {
    (void)state;
    const size_t cuts[4] = {0, 3, g_L.kv_type_off[5], g_L.data_start + g_L.data_off[2]};
    const char *want[4] = {"too short for a magic", "too short for a magic",
                           "kv[5] key 'test.i16': truncated",
                           "tensor[2] 'blk.0.q4': data past end of file"};
    for (int i = 0; i < 4; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/cut%d.gguf", g_dir, i);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(g_bytes, 1, cuts[i], f), cuts[i]);
        fclose(f);
        pv_weights *w = NULL;
        pv_error err = {0};
        assert_int_not_equal(pv_weights_open(path, &w, &err), PV_OK);
        assert_null(w);
        assert_has(err.msg, path);
        assert_has(err.msg, want[i]);
        /* pv_gguf_open directly on the empty file reports the truncated magic */
        if (i == 0) {
            assert_int_equal(pv_gguf_open(path, &w, &err), PV_ERR_TRUNCATED);
            assert_has(err.msg,
                       "header magic: truncated: needs 4 bytes at offset 0, file is 0 bytes");
        }
    }
}

static void test_unknown_value_types(void **state) {
    (void)state;
    char field[128];
    for (int i = 0; i < NKV; i++) {
        snprintf(field, sizeof field, "kv[%d] key '%s': ", i, kv_specs[i].key);
        expect_patch(g_L.kv_type_off[i], 13, 4, field, "unknown value type 13");
        expect_patch(g_L.kv_type_off[i], 0xFFFFFFFFu, 4, field, "unknown value type 4294967295");
        if (kv_specs[i].type == PV_VAL_ARRAY) /* element type follows the value type */
            expect_patch(g_L.kv_type_off[i] + 4, 99, 4, field, "unknown array element type 99");
    }
    /* the element type of an inner array: test.nested element[1] starts after the outer
     * header (12) and element[0] (12 + 3*4) */
    size_t inner1 = g_L.kv_type_off[KV_NESTED] + 4 + 12 + 24;
    expect_patch(inner1, 13, 4,
                 "kv[17] key 'test.nested' element[1]: ", "unknown array element type 13");
}

static void test_unknown_tensor_types(void **state) {
    (void)state;
    char field[128];
    for (int j = 0; j < NT; j++) {
        snprintf(field, sizeof field, "tensor[%d] '%s': ", j, t_specs[j].name);
        expect_patch(g_L.ti_type_off[j], 99, 4, field, "unknown tensor type 99");
        expect_patch(g_L.ti_type_off[j], 31, 4, field,
                     "unknown tensor type 31"); /* gap in ggml ids */
        expect_patch(g_L.ti_type_off[j], 40, 4, field, "unknown tensor type 40");
        expect_patch(g_L.ti_type_off[j], 4, 4, field, "tensor type 4 (Q4_2) is obsolete");
    }
    /* F32 [4,3] relabelled Q4_0: 4 is not a multiple of 32 */
    expect_patch(g_L.ti_type_off[0], PV_TYPE_Q4_0, 4,
                 "tensor[0] 'tok.f32': ", "ne[0] = 4 is not a multiple of the Q4_0 block size 32");
}

static void test_huge_counts(void **state) {
    (void)state;
    const uint64_t huge = 1ull << 62;
    char problem[200];
    /* n_kv huge, file without tensors cut after the last kv: the parser reads what is
     * there (allocating only for that) and stops at the first missing kv */
    size_t n;
    uint8_t *nt = (uint8_t *)pv_test_read_file(g_small_nt, &n);
    assert_non_null(nt);
    assert_true(n >= g_L.kv_end[NKV - 1]);
    memcpy(nt + 16, &huge, 8);
    snprintf(problem, sizeof problem, "truncated: needs 8 bytes at offset %zu, file is %zu bytes",
             g_L.kv_end[NKV - 1], g_L.kv_end[NKV - 1]);
    expect_fail_bytes(nt, g_L.kv_end[NKV - 1], ": kv[23] key: ", problem);
    expect_fail_bytes(nt, g_L.kv_end[NKV - 1], ": kv[23] key: ",
                      "(header declares n_kv = 4611686018427387904, more than the file can hold)");
    free(nt);
    /* n_tensors huge, cut after the last tensor info */
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    memcpy(b, g_bytes, g_size);
    memcpy(b + 8, &huge, 8);
    snprintf(problem, sizeof problem, "truncated: needs 8 bytes at offset %zu", g_L.ti_end[NT - 1]);
    expect_fail_bytes(b, g_L.ti_end[NT - 1], ": tensor[5] name: ", problem);
    expect_fail_bytes(b, g_L.ti_end[NT - 1], ": tensor[5] name: ",
                      "(header declares n_tensors = 4611686018427387904, more than the file can "
                      "hold)");
    /* and uncut: tensor data bytes are read as infos; any error will do, no huge alloc */
    expect_fail_bytes(b, g_size, "tensor[", "");
    memcpy(b, g_bytes, g_size);
    memcpy(b + 16, &huge, 8);
    expect_fail_bytes(b, g_size, "", "");
    free(b);
    /* array lengths */
    expect_patch(g_L.kv_type_off[KV_ARR_U32] + 8, huge, 8, "kv[13] key 'test.arr_u32': ",
                 "array of 4611686018427387904 u32 elements cannot fit");
    expect_patch(g_L.kv_type_off[KV_TOKENS] + 8, huge, 8, "kv[16] key 'test.tokens': ",
                 "array of 4611686018427387904 string elements cannot fit");
    expect_patch(g_L.kv_type_off[KV_NESTED] + 8, huge, 8, "kv[17] key 'test.nested': ",
                 "array of 4611686018427387904 array elements cannot fit");
    expect_patch(g_L.kv_type_off[KV_NESTED] + 8, UINT64_MAX, 8, "kv[17] key 'test.nested': ",
                 "array of 18446744073709551615 array elements cannot fit");
    /* inner array length: test.nested element[0] count */
    expect_patch(g_L.kv_type_off[KV_NESTED] + 4 + 12 + 4, huge, 8,
                 "kv[17] key 'test.nested' element[0]: ",
                 "array of 4611686018427387904 i32 elements cannot fit");
    /* string lengths: a value, a key, a tensor name, an array element, a nested element */
    expect_patch(g_L.kv_type_off[KV_ARCH] + 4, huge, 8, "kv[1] key 'general.architecture': ",
                 "truncated: needs 4611686018427387904 bytes");
    expect_patch(g_L.kv_type_off[KV_ARCH] + 4, UINT64_MAX, 8, "kv[1] key 'general.architecture': ",
                 "truncated: needs 18446744073709551615 bytes");
    expect_patch(g_L.kv_start[KV_U8], huge, 8,
                 "kv[2] key: ", "truncated: needs 4611686018427387904 bytes");
    expect_patch(g_L.ti_start[1], huge, 8,
                 "tensor[1] name: ", "truncated: needs 4611686018427387904 bytes");
    /* test.tokens element[1] (after the 12-byte header and "a": 8 + 1) */
    expect_patch(
        g_L.kv_type_off[KV_TOKENS] + 4 + 12 + 9, huge, 8,
        "kv[16] key 'test.tokens' element[1]: ", "truncated: needs 4611686018427387904 bytes");
    /* test.nested_str element[1][0]: outer header 12, inner0 = 12 + 10 + 9, inner1 header 12 */
    expect_patch(g_L.kv_type_off[KV_NESTED_STR] + 4 + 12 + 31 + 12, huge, 8,
                 "kv[18] key 'test.nested_str' element[1][0]: ",
                 "truncated: needs 4611686018427387904 bytes");
}

static void test_duplicates(void **state) {
    (void)state;
    /* "test.dup_b" -> "test.dup_a": the last key byte */
    expect_patch(g_L.kv_type_off[KV_DUP_B] - 1, 'a', 1,
                 "kv[21] key 'test.dup_a': ", "duplicate key (first at kv[20])");
    (void)KV_DUP_A;
    /* "blk.0.q4" -> "blk.0.q8" */
    expect_patch(g_L.ti_ndims_off[2] - 1, '8', 1,
                 "tensor[2] 'blk.0.q8': ", "duplicate tensor name (first at tensor[1])");
}

static void test_dims(void **state) {
    (void)state;
    const char *f0 = "tensor[0] 'tok.f32': ";
    size_t d0 = g_L.ti_dims_off[0];
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    /* 2^32 x 2^32 elements */
    memcpy(b, g_bytes, g_size);
    uint64_t v = 1ull << 32;
    memcpy(b + d0, &v, 8);
    memcpy(b + d0 + 8, &v, 8);
    expect_fail_bytes(b, g_size, f0, "dimension product overflows");
    /* 2^31 x 2^31 elements fit in int64, but 2^62 * 4 bytes do not fit in 64 bits */
    v = 1ull << 31;
    memcpy(b + d0, &v, 8);
    memcpy(b + d0 + 8, &v, 8);
    expect_fail_bytes(b, g_size, f0, "byte size overflows");
    free(b);
    expect_patch(d0, 1ull << 63, 8, f0, "dimension 0 is 9223372036854775808, above INT64_MAX");
    expect_patch(d0 + 8, 0, 8, f0, "dimension 1 is 0");
    expect_patch(g_L.ti_ndims_off[0], 0, 4, f0, "n_dims 0 is out of range (must be 1..4)");
    expect_patch(g_L.ti_ndims_off[0], 5, 4, f0, "n_dims 5 is out of range");
    /* a bigger but consistent shape runs past the end of the file */
    expect_patch(g_L.ti_dims_off[4] + 16, 1000, 8,
                 "tensor[4] 'blk.0.f16': ", "data past end of file");
}

static void test_offsets(void **state) {
    (void)state;
    const char *f4 = "tensor[4] 'blk.0.f16': ";
    expect_patch(g_L.ti_offset_off[4], g_L.data_off[4] + 100 * ALIGN, 8, f4,
                 "data past end of file");
    /* data_start + offset overflows 64 bits */
    expect_patch(g_L.ti_offset_off[4], UINT64_MAX - (ALIGN - 1), 8, f4, "data past end of file");
    char problem[96];
    snprintf(problem, sizeof problem, "offset %zu is not a multiple of the alignment 64",
             g_L.data_off[2] + 1);
    expect_patch(g_L.ti_offset_off[2], g_L.data_off[2] + 1, 8, "tensor[2] 'blk.0.q4': ", problem);
    /* 32-aligned but not 64-aligned: the file's general.alignment is honoured */
    snprintf(problem, sizeof problem, "offset %zu is not a multiple of the alignment 64",
             g_L.data_off[2] + 32);
    expect_patch(g_L.ti_offset_off[2], g_L.data_off[2] + 32, 8, "tensor[2] 'blk.0.q4': ", problem);
}

static void test_alignment(void **state) {
    (void)state;
    size_t off = g_L.kv_type_off[KV_ALIGN] + 4;
    const char *f = "kv[0] key 'general.alignment': ";
    expect_patch(off, 0, 4, f, "alignment must be a nonzero power of two, got 0");
    expect_patch(off, 3, 4, f, "alignment must be a nonzero power of two, got 3");
    expect_patch(off, 96, 4, f, "alignment must be a nonzero power of two, got 96");
    /* a string-typed general.alignment */
    char path[160];
    snprintf(path, sizeof path, "%s/align_str.gguf", g_dir);
    pv_gguf_writer *g = pv_gguf_writer_new();
    pv_gguf_writer_set_str(g, "general.architecture", "llama");
    pv_gguf_writer_set_str(g, "general.alignment", "32");
    pv_error err = {0};
    float x[2] = {1, 2};
    int64_t ne[1] = {2};
    assert_int_equal(pv_gguf_writer_add_tensor(g, "x", PV_TYPE_F32, 1, ne, x, &err), PV_OK);
    assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_OK);
    pv_gguf_writer_free(g);
    pv_weights *w = NULL;
    assert_int_equal(pv_weights_open(path, &w, &err), PV_ERR_FORMAT);
    assert_null(w);
    assert_has(err.msg, path);
    assert_has(
        err.msg,
        "kv[1] key 'general.alignment': general.alignment must be an unsigned integer, got string");
}

static void test_magic_and_version(void **state) {
    (void)state;
    expect_patch(3, 'X', 1, "header magic: ", "not a GGUF file (magic 0x47475558 'GGUX'");
    expect_patch(4, 1, 4, "header version: ", "GGUF version 1 is not supported");
    expect_patch(4, 4, 4, "header version: ", "unsupported GGUF version 4");
    expect_patch(4, 0, 4, "header version: ", "unsupported GGUF version 0");
    expect_patch(4, 0x03000000u, 4, "header version: ", "big-endian GGUF");
    /* v2 has the same layout as v3 */
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    memcpy(b, g_bytes, g_size);
    uint32_t v2 = 2;
    memcpy(b + 4, &v2, 4);
    pv_error err = {0};
    pv_weights *w = NULL;
    assert_int_equal(parse_copy(b, g_size, &err, &w), PV_OK);
    assert_int_equal(w->version, 2);
    assert_int_equal(w->n_tensors, NT);
    free_parsed(w);
    free(b);
}

/* Hand-assembled file: one kv "k" holding `levels` nested arrays, innermost u8[0]. */
static uint8_t *nested_file(int levels, size_t *n) {
    size_t cap = 24 + 9 + 4 + (size_t)levels * 12 + 12;
    uint8_t *b = calloc(1, cap), *p = b;
    assert_non_null(b);
    uint32_t u32;
    uint64_t u64;
#define PUT32(v) (u32 = (v), memcpy(p, &u32, 4), p += 4)
#define PUT64(v) (u64 = (v), memcpy(p, &u64, 8), p += 8)
    PUT32(0x46554747u);
    PUT32(3);
    PUT64(0); /* n_tensors */
    PUT64(1); /* n_kv */
    PUT64(1);
    *p++ = 'k';
    PUT32(PV_VAL_ARRAY);
    for (int l = 0; l < levels; l++) {
        PUT32(PV_VAL_ARRAY);
        PUT64(1);
    }
    PUT32(PV_VAL_U8);
    PUT64(0);
#undef PUT32
#undef PUT64
    *n = (size_t)(p - b);
    return b;
}

static void test_nesting_depth(void **state) {
    (void)state;
    size_t n;
    /* 8 arrays in all (the limit): accepted */
    uint8_t *b = nested_file(7, &n);
    pv_error err = {0};
    pv_weights *w = NULL;
    if (parse_copy(b, n, &err, &w) != PV_OK) fail_msg("%s", err.msg);
    const pv_value *v = pv_weights_meta(w, "k");
    for (int l = 0; l < 7; l++) {
        assert_int_equal(v->type, PV_VAL_ARRAY);
        assert_int_equal(v->arr.type, PV_VAL_ARRAY);
        assert_int_equal(v->arr.n, 1);
        v = &v->arr.items[0];
    }
    assert_int_equal(v->arr.type, PV_VAL_U8);
    assert_int_equal(v->arr.n, 0);
    free_parsed(w);
    free(b);
    /* deeper: refused with the path to the element, 100000 levels included (no deep recursion) */
    const int deep[2] = {8, 100000};
    for (int i = 0; i < 2; i++) {
        b = nested_file(deep[i], &n);
        expect_fail_bytes(b, n, "kv[0] key 'k' element[0][0][0][0][0][0][0]: ",
                          "arrays nested deeper than 8 levels");
        free(b);
    }
}

static void test_open_errors(void **state) {
    (void)state;
    pv_weights *w = (pv_weights *)1;
    pv_error err = {0};
    /* a directory */
    assert_int_not_equal(pv_weights_open(g_dir, &w, &err), PV_OK);
    assert_null(w);
    assert_has(err.msg, g_dir);
    assert_has(err.msg, "is a directory, not a GGUF file");
    /* a character device */
    assert_int_equal(pv_weights_open("/dev/null", &w, &err), PV_ERR_FORMAT);
    assert_has(err.msg, "/dev/null: not a regular file");
    /* missing */
    char path[160];
    snprintf(path, sizeof path, "%s/missing.gguf", g_dir);
    assert_int_equal(pv_weights_open(path, &w, &err), PV_ERR_NOT_FOUND);
    assert_has(err.msg, path);
    /* another format (a safetensors header starts with a u64 length, a JSON file with '{') */
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("{\"a\": 1}", f);
    fclose(f);
    assert_int_equal(pv_weights_open(path, &w, &err), PV_ERR_FORMAT);
    assert_has(err.msg, path);
    assert_has(err.msg, "not a GGUF file (magic 0x7b226122 '{\"a\"'");
}

static void test_writer_api(void **state) {
    (void)state;
    pv_gguf_writer *g = pv_gguf_writer_new();
    pv_error err = {0};
    pv_gguf_writer_set_u32(g, "k", 1);
    pv_gguf_writer_set_u32(g, "k", 7); /* replaces */
    float x[64] = {0};
    int64_t ne[2] = {32, 2};
    assert_int_equal(pv_gguf_writer_add_tensor_ref(g, "t", PV_TYPE_F32, 2, ne, x, &err), PV_OK);
    assert_int_equal(pv_gguf_writer_add_tensor(g, "t", PV_TYPE_F32, 2, ne, x, &err),
                     PV_ERR_DUPLICATE);
    int64_t bad[1] = {33};
    assert_int_equal(pv_gguf_writer_add_tensor(g, "q", PV_TYPE_Q4_0, 1, bad, x, &err),
                     PV_ERR_INVALID);
    assert_int_equal(pv_gguf_writer_add_tensor(g, "q", (pv_type)31, 1, ne, x, &err),
                     PV_ERR_INVALID);
    assert_int_equal(pv_gguf_writer_add_tensor(g, "q", PV_TYPE_F32, 5, ne, x, &err),
                     PV_ERR_INVALID);
    pv_value broken = {.type = PV_VAL_ARRAY, .arr = {.type = PV_VAL_STRING, .n = 2, .items = NULL}};
    assert_int_equal(pv_gguf_writer_set_value(g, "b", &broken, &err), PV_ERR_INVALID);
    char path[160];
    snprintf(path, sizeof path, "%s/api.gguf", g_dir);
    assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_OK);
    pv_weights *w = NULL;
    assert_int_equal(pv_weights_open(path, &w, &err), PV_OK);
    assert_int_equal(w->n_kv, 1);
    uint32_t k = 0;
    assert_true(pv_meta_get_u32(w, "k", &k));
    assert_int_equal(k, 7);
    assert_int_equal(w->n_tensors, 1);
    assert_int_equal(w->alignment, 32);
    assert_int_equal(((uintptr_t)w->tensors[0].data - (uintptr_t)w->map) % 32, 0);
    pv_weights_free(w);
    /* a bad alignment refuses to write */
    pv_gguf_writer_set_alignment(g, 3);
    assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_ERR_INVALID);
    pv_gguf_writer_free(g);
    /* unwritable path */
    g = pv_gguf_writer_new();
    snprintf(path, sizeof path, "%s/no/such/dir.gguf", g_dir);
    assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_ERR_IO);
    assert_has(err.msg, path);
    pv_gguf_writer_free(g);
}

/* Reads every byte a parsed value points at, so ASan checks the bounds. */
static uint64_t touch_value(const pv_value *v) {
    uint64_t acc = 0;
    if (v->type == PV_VAL_STRING) {
        for (uint64_t i = 0; i < v->s.len; i++)
            acc += (uint8_t)v->s.ptr[i];
    } else if (v->type == PV_VAL_ARRAY) {
        size_t esz = pv_val_type_size(v->arr.type);
        if (esz)
            for (uint64_t i = 0; i < v->arr.n * esz; i++)
                acc += v->arr.raw[i];
        else
            for (uint64_t i = 0; i < v->arr.n; i++)
                acc += touch_value(&v->arr.items[i]);
    }
    return acc;
}

/* Deterministic random byte flips, mostly in the metadata: never a crash, and either a
 * consistent result or an error naming the file. */
static void test_fuzz_flips(void **state) {
    (void)state;
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 20240601);
    int n_ok = 0, n_err = 0;
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    for (int it = 0; it < 2000; it++) {
        memcpy(b, g_bytes, g_size);
        int flips = 1 + (int)(pv_test_rng_u64(&rng) % 4);
        if (it % 4 == 3) {
            /* an "interesting" 8-byte value over a random metadata position: hits the
             * counts, lengths, dims and offsets far more often than single flips */
            static const uint64_t special[] = {0,          1,          0xFFFFFFFFull, 1ull << 32,
                                               1ull << 62, UINT64_MAX, 1ull << 63,    13};
            uint64_t r = pv_test_rng_u64(&rng);
            size_t pos = (size_t)(r % (g_L.data_start - 8));
            memcpy(b + pos, &special[(r >> 32) % 8], 8);
            flips = 0;
        }
        for (int k = 0; k < flips; k++) {
            uint64_t r = pv_test_rng_u64(&rng);
            size_t span = (r & 7) ? g_L.data_start : g_size; /* 7 in 8 in the metadata */
            size_t pos = (size_t)((r >> 8) % span);
            b[pos] ^= (uint8_t)(1 + ((r >> 40) % 255));
        }
        pv_error err = {0};
        pv_weights *w = NULL;
        pv_status st = parse_copy(b, g_size, &err, &w);
        if (st == PV_OK) {
            n_ok++;
            const uint8_t *map = w->map;
            uint64_t acc = 0;
            for (uint64_t i = 0; i < w->n_kv; i++)
                acc += touch_value(&w->kv[i].value);
            for (uint64_t i = 0; i < w->n_tensors; i++) {
                const pv_tensor_desc *t = &w->tensors[i];
                const uint8_t *d = t->data;
                assert_true(d >= map && t->nbytes <= g_size &&
                            (size_t)(d - map) <= g_size - t->nbytes);
                acc += d[0] + d[t->nbytes - 1];
            }
            (void)acc;
            free_parsed(w);
        } else {
            n_err++;
            assert_int_equal(err.status, st);
            assert_has(err.msg, g_small);
        }
    }
    free(b);
    /* both outcomes occur: flips in tensor data keep the file valid */
    assert_true(n_ok > 0);
    assert_true(n_err > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_layout_matches_spec),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_truncate_every_byte),
        cmocka_unit_test(test_truncate_boundaries),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_unknown_value_types),
        cmocka_unit_test(test_unknown_tensor_types),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_writer_api),
        cmocka_unit_test(test_fuzz_flips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
