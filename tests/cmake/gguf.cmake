# GGUF reader/writer and the format-neutral weights layer (src/gguf, src/weights).
# test_gguf: synthetic files (round trip, malformed input, byte-flip loop; no data needed).
# test_gguf_real: the real stories260K.gguf and the fixture GGUFs (skips without data).
pv_add_test(NAME test_gguf SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gguf.c
            LIBS pv_gguf pv_kernels LABELS unit TIMEOUT 300)
pv_add_test(NAME test_gguf_real SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gguf_real.c
            LIBS pv_gguf pv_kernels LABELS unit TIMEOUT 300)
