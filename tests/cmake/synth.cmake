# Synthetic-model generator tests (src/model/synth.c, `pensieve synth`).
pv_add_test(NAME test_synth SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_synth.c
            LIBS pv_model pv_gguf pv_kernels pv_tokenizer pv_sampler LABELS unit TIMEOUT 300)
pv_add_script_test(NAME test_synth_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/test_synth_cli.sh
                   LABELS unit TIMEOUT 120)
