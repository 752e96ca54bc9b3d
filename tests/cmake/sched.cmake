# The continuous-batching scheduler on the real stories260K model.
pv_add_test(NAME test_sched SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sched.c
            LIBS pv_sched pv_grammar pv_model pv_gguf pv_kernels pv_tokenizer pv_sampler LABELS sched)
