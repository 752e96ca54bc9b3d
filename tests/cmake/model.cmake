# End-to-end model tests against the shared oracles (stories260K, fixture goldens).
set(PV_ALL_LIBS pv_model pv_gguf pv_kernels pv_tokenizer pv_sampler)
pv_add_test(NAME test_stories SOURCES ${CMAKE_SOURCE_DIR}/tests/e2e/test_stories.c
            LIBS ${PV_ALL_LIBS} LABELS e2e)
pv_add_test(NAME test_model_fixtures SOURCES ${CMAKE_SOURCE_DIR}/tests/e2e/test_model_fixtures.c
            LIBS ${PV_ALL_LIBS} LABELS e2e TIMEOUT 900)
pv_add_script_test(NAME test_stories_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/e2e/run_stories_cli.sh
                   LABELS e2e)
pv_add_test(NAME test_threadpool SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_threadpool.c
            LIBS pv_model pv_gguf pv_kernels pv_tokenizer)
pv_add_test(NAME test_model_load SOURCES ${CMAKE_SOURCE_DIR}/tests/e2e/test_model_load.c
            LIBS ${PV_ALL_LIBS})
