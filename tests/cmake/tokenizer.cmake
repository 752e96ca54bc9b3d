# tokenizer.cmake — tokenizer tests: cmocka unit tests, the tokenizer.json -> vocab GGUF
# tool, the library-level driver and the Node oracle comparison (one CTest per vocabulary).
pv_add_test(NAME test_tokenizer
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_tokenizer.c
  LIBS pv_tokenizer pv_gguf pv_kernels
  LABELS tokenizer TIMEOUT 600)

foreach(tool vocab_from_hf tok_driver)
  add_executable(${tool} ${CMAKE_SOURCE_DIR}/tests/tokenizer/${tool}.c)
  target_include_directories(${tool} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${tool} PRIVATE pv_tokenizer pv_gguf pv_kernels pv_core
                        PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::JANSSON Threads::Threads m)
endforeach()

foreach(vocab llama3_fixture qwen3_fixture qwen2_fixture phi3_fixture
              llama3_1 qwen3 gemma3 deepseek_v3 llama2)
  pv_add_script_test(NAME tokenizer_oracle_${vocab} RUNNER node
    COMMAND ${CMAKE_SOURCE_DIR}/tests/tokenizer/oracle.js ${vocab}
            $<TARGET_FILE:tok_driver> $<TARGET_FILE:vocab_from_hf>
            ${CMAKE_BINARY_DIR}/tokenizer_vocabs
    LABELS tokenizer TIMEOUT 900)
endforeach()
pv_add_script_test(NAME tokenizer_pretok_families RUNNER node
  COMMAND ${CMAKE_SOURCE_DIR}/tests/tokenizer/pretok_families.js
          $<TARGET_FILE:tok_driver> $<TARGET_FILE:vocab_from_hf>
          ${CMAKE_BINARY_DIR}/tokenizer_vocabs
  LABELS tokenizer TIMEOUT 900)
pv_add_script_test(NAME tokenizer_cli
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/tokenizer/cli_test.sh $<TARGET_FILE:vocab_from_hf>
  LABELS tokenizer TIMEOUT 300)
