# api.cmake — the API format layer (src/api): request validation tables, the fallback prompt,
# response/SSE builders, and count_tokens on stories260K (and the qwen3 fixture's vocabulary).
pv_add_test(NAME test_api
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_api.c
  LIBS pv_api pv_template pv_toolcall pv_grammar pv_tokenizer pv_gguf pv_kernels
  LABELS api TIMEOUT 300)
