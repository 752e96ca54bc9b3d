# template.cmake — chat-template engine tests: the C unit test (hand templates whose expected
# output jinja2 renders at test time, parser fuzzing, thread safety) and the oracle comparison
# of `pensieve template` against Python jinja2 over real model templates x conversations, and
# the API request → template context mapping (docs/chat.md) checked the same way.
pv_add_test(NAME test_template
  SOURCES ${CMAKE_SOURCE_DIR}/tests/template/test_template.c
  LIBS pv_template
  LABELS template TIMEOUT 300)

pv_add_script_test(NAME template_oracle RUNNER python3
  COMMAND ${CMAKE_SOURCE_DIR}/tests/template/oracle.py
  LABELS template TIMEOUT 600)
# requests of both APIs → the documented template context → jinja2, vs the server's path
pv_add_script_test(NAME template_request_mapping RUNNER python3
  COMMAND ${CMAKE_SOURCE_DIR}/tests/template/request_mapping.py
  LABELS template TIMEOUT 300)
