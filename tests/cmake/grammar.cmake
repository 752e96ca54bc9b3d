# grammar.cmake — the grammar engine (src/grammar): GBNF parser/matcher unit tests, mask vs
# per-token check and fuzzing (test_grammar), and the JSON Schema test whose oracle is ajv
# (grammar_schema_ajv: a node script drives grammar_driver and validates every output).
pv_add_test(NAME test_grammar
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_grammar.c
  LIBS pv_grammar pv_tokenizer pv_gguf pv_kernels
  LABELS grammar TIMEOUT 600)

add_executable(grammar_driver ${CMAKE_SOURCE_DIR}/tests/grammar/grammar_driver.c)
target_include_directories(grammar_driver PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(grammar_driver PRIVATE pv_grammar pv_tokenizer pv_gguf pv_kernels pv_core
                      PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::JANSSON Threads::Threads m)

pv_add_script_test(NAME grammar_schema_ajv RUNNER node
  COMMAND ${CMAKE_SOURCE_DIR}/tests/grammar/schema_oracle.js
          $<TARGET_FILE:grammar_driver> ${CMAKE_SOURCE_DIR}/tests/grammar/schemas.json
  LABELS grammar TIMEOUT 900)
