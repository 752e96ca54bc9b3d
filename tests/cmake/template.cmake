# template.cmake — chat-template engine tests: the C unit test (hand templates whose expected
# output jinja2 renders at test time, parser fuzzing, thread safety) and the oracle comparison
# of `pensieve template` against Python jinja2 over real model templates x conversations, and
# the API request → template context mapping (docs/chat.md) checked the same way.
pv_add_test(NAME test_template
  SOURCES ${CMAKE_SOURCE_DIR}/tests/template/test_template.c
  LIBS pv_template
  LABELS template TIMEOUT 300)

find_program(PV_PYTHON3 python3)
if(PV_PYTHON3)
  pv_add_script_test(NAME template_oracle
    COMMAND ${PV_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/template/oracle.py
    LABELS template TIMEOUT 600)
  # requests of both APIs → the documented template context → jinja2, vs the server's path
  pv_add_script_test(NAME template_request_mapping
    COMMAND ${PV_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/template/request_mapping.py
    LABELS template TIMEOUT 300)
else()
  pv_add_script_test(NAME template_oracle_missing_python
    COMMAND bash -c "echo 'python3 not found: template oracle cannot run' >&2; [ -n \"$CI\" ] && exit 1; exit 77"
    LABELS template)
endif()
