/* pv_gguf.h — GGUF v2/v3 reader (over mmap, every offset and size checked against the
 * file size with overflow-safe arithmetic) and writer (for the synthetic-model generator,
 * the tokenizer.json importer and the malformed-file tests).
 *
 * The reader produces a pv_weights (see ../weights/pv_weights.h). Errors name the file,
 * the field (e.g. "kv[3] 'llama.block_count'", "tensor[12] 'blk.0.attn_q.weight'") and the
 * problem ("truncated", "unknown value type 17", "duplicate key", "dims overflow",
 * "data past end of file", ...). */
#ifndef PV_GGUF_H
#define PV_GGUF_H

#include "../weights/pv_weights.h"

#define PV_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define PV_GGUF_DEFAULT_ALIGNMENT 32

/* pv_gguf_open maps `path` read-only and parses it; the result owns the mapping
 * (pv_weights_free munmaps it). pv_weights_open calls it after checking the magic.
 * pv_gguf_parse parses a GGUF image already in memory (map, size) without taking it: the
 * caller keeps `map` alive until pv_weights_free and then releases it. `path` is only
 * used in messages. */
pv_status pv_gguf_open(const char *path, pv_weights **out, pv_error *err);
pv_status pv_gguf_parse(const char *path, const void *map, uint64_t size, pv_weights **out,
                        pv_error *err);
/* Byte offset of the (aligned) tensor data section in the file, or 0 when `w` did not come
 * from the GGUF reader. Tensor offsets in the file are relative to it. */
uint64_t pv_gguf_data_offset(const pv_weights *w);

/* ---- writer ----
 * Builds a GGUF v3 file in memory-light fashion: metadata values are serialized when set,
 * tensor infos are collected, tensor data is copied (add_tensor) or borrowed
 * (add_tensor_ref) and streamed out by pv_gguf_writer_write with buffered fwrite. Keys and
 * tensors are written in the order they were first set/added. Setters that fail (out of
 * memory, invalid input) make the later write fail with a message. The alignment is 32
 * unless set_alignment is called, which also writes the general.alignment key. */
typedef struct pv_gguf_writer pv_gguf_writer;

pv_gguf_writer *pv_gguf_writer_new(void);
void pv_gguf_writer_free(pv_gguf_writer *g);
void pv_gguf_writer_set_alignment(pv_gguf_writer *g, uint32_t alignment);
/* metadata setters (key copied; a key set twice replaces the old value) */
void pv_gguf_writer_set_u32(pv_gguf_writer *g, const char *key, uint32_t v);
void pv_gguf_writer_set_i32(pv_gguf_writer *g, const char *key, int32_t v);
void pv_gguf_writer_set_u64(pv_gguf_writer *g, const char *key, uint64_t v);
void pv_gguf_writer_set_f32(pv_gguf_writer *g, const char *key, float v);
void pv_gguf_writer_set_bool(pv_gguf_writer *g, const char *key, bool v);
void pv_gguf_writer_set_str(pv_gguf_writer *g, const char *key, const char *v);
/* arrays: data copied. elem_type is a scalar PV_VAL_* type; for strings use set_arr_str */
void pv_gguf_writer_set_arr(pv_gguf_writer *g, const char *key, pv_val_type elem_type,
                            const void *data, uint64_t n);
void pv_gguf_writer_set_arr_str(pv_gguf_writer *g, const char *key, const char *const *strs,
                                uint64_t n);
/* strings with explicit lengths (tokens may contain NUL bytes) */
void pv_gguf_writer_set_arr_strn(pv_gguf_writer *g, const char *key, const char *const *strs,
                                 const uint64_t *lens, uint64_t n);
/* tensor: data (nbytes = pv_type_row_size(type, ne[0]) * ne[1] * ...) is copied */
pv_status pv_gguf_writer_add_tensor(pv_gguf_writer *g, const char *name, pv_type type,
                                    int n_dims, const int64_t *ne, const void *data,
                                    pv_error *err);
/* Any value, including arrays of arrays (a pv_value tree as the reader returns it: scalar
 * array elements in arr.raw, STRING/ARRAY elements in arr.items). Serialized at once, so
 * `v` may be freed after the call. Returns PV_ERR_INVALID for an inconsistent tree. */
pv_status pv_gguf_writer_set_value(pv_gguf_writer *g, const char *key, const pv_value *v,
                                   pv_error *err);
/* Like add_tensor but borrows `data` (not copied): it must stay valid until
 * pv_gguf_writer_write returns. For the generator's GB-sized tensors. */
pv_status pv_gguf_writer_add_tensor_ref(pv_gguf_writer *g, const char *name, pv_type type,
                                        int n_dims, const int64_t *ne, const void *data,
                                        pv_error *err);
/* Writes the file. Returns PV_OK or an i/o error naming the path. */
pv_status pv_gguf_writer_write(pv_gguf_writer *g, const char *path, pv_error *err);

#endif /* PV_GGUF_H */
