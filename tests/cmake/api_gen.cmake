# Black-box tests of the generation routes of `pensieve start` on the real engine.
find_program(PV_NODE node)
if(PV_NODE)
  pv_add_script_test(NAME api_generation
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/e2e/api_gen_test.mjs
    LABELS server TIMEOUT 300)
endif()
