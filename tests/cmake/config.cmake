# Configuration layer (src/config): TOML parser, key table, precedence, `pensieve config`
# and `pensieve validate`.
pv_add_test(NAME test_config SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_config.c
            LIBS pv_config LABELS unit TIMEOUT 120)
# Fuzz target run deterministically (random mutations of the corpus; see fuzz_toml.c for the
# libFuzzer build with clang).
pv_add_test(NAME test_fuzz_toml SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/fuzz_toml_driver.c
            ${CMAKE_SOURCE_DIR}/tests/unit/fuzz_toml.c LIBS pv_config LABELS unit TIMEOUT 300
            ARGS ${CMAKE_SOURCE_DIR}/tests/config 100000)
# Differential test against Python's tomllib (valid / invalid / unsupported corpus and
# seeded mutations); the dumper is test_config --dump.
pv_add_script_test(NAME test_config_tomllib
                   COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/config/tomllib_oracle.py
                   $<TARGET_FILE:test_config> ${CMAKE_SOURCE_DIR}/tests/config 3000
                   LABELS unit TIMEOUT 300)
# `pensieve config`, `config init`, `validate` and start's flag/config errors through the
# binary (good model, truncated GGUF, unsupported architecture, memory limit, ...).
pv_add_script_test(NAME test_config_cli
                   COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/config/test_config_cli.py
                   LABELS unit TIMEOUT 300)
# libFuzzer build of tests/unit/fuzz_toml.c when clang exists (not built by default):
#   cmake --build build --target fuzz_toml_libfuzzer && build/fuzz_toml -max_len=4096 tests/config/valid
find_program(PV_CLANG NAMES clang clang-16 clang-15 clang-14)
if(PV_CLANG)
  add_custom_target(fuzz_toml_libfuzzer
    COMMAND ${PV_CLANG} -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I${CMAKE_SOURCE_DIR}/src
            ${CMAKE_SOURCE_DIR}/tests/unit/fuzz_toml.c ${CMAKE_SOURCE_DIR}/src/config/toml.c
            ${CMAKE_SOURCE_DIR}/src/core/core.c -lm -o ${CMAKE_BINARY_DIR}/fuzz_toml
    COMMENT "libFuzzer target fuzz_toml (clang)" VERBATIM)
endif()
