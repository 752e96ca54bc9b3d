# Tool-call output parsing tests (src/toolcall).
pv_add_test(NAME test_toolcall SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_toolcall.c
            LIBS pv_toolcall LABELS unit TIMEOUT 300)
