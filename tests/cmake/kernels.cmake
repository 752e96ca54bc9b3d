# Kernel tests: reference known answers and accuracy (test_kernels_ref), and every SIMD
# variant the CPU runs against the reference (test_kernels_parity). The _env_ variants run
# the reference test again with PENSIEVE_KERNELS set, checking the selection override
# (a valid choice is honoured; an unknown one falls back to the automatic choice).
pv_add_test(NAME test_kernels_ref SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_kernels_ref.c
            LIBS pv_kernels LABELS kernels)
pv_add_test(NAME test_kernels_parity SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_kernels_parity.c
            LIBS pv_kernels LABELS kernels)
foreach(pv_kchoice ref avx2 bogus)
  add_test(NAME test_kernels_env_${pv_kchoice} COMMAND test_kernels_ref)
  set_tests_properties(test_kernels_env_${pv_kchoice} PROPERTIES LABELS kernels TIMEOUT 120
                       SKIP_RETURN_CODE 77 ENVIRONMENT "PENSIEVE_KERNELS=${pv_kchoice}")
endforeach()
