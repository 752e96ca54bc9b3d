# Sampler and stop-string tests (src/sampler).
pv_add_test(NAME test_sampler SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sampler.c
            LIBS pv_sampler LABELS unit TIMEOUT 120)
