# server.cmake — tests of the HTTP layer (src/server): a cmocka unit test of the response
# helpers (error shapes, JSON body parsing, request ids, key comparison) and the black-box
# test of `pensieve start` over raw sockets with Node (stories260K; skips when absent), and
# the end-to-end tests with real clients (SDKs, Claude Code) and tool use on the fixtures.
pv_add_test(NAME test_server_http_util SOURCES ${CMAKE_SOURCE_DIR}/tests/server/test_http_util.c
            LIBS pv_server pv_api pv_template pv_toolcall pv_grammar pv_sched pv_model pv_tokenizer pv_sampler pv_gguf pv_kernels
            LABELS server TIMEOUT 60)
find_program(PV_NODE node)
if(PV_NODE)
  pv_add_script_test(NAME server_http
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/server/test_server_http.mjs
    LABELS server TIMEOUT 300)
  # the generation routes on the real engine (tests/e2e)
  pv_add_script_test(NAME api_generation
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/e2e/api_gen_test.mjs
    LABELS server TIMEOUT 300)
  # the real clients: @anthropic-ai/sdk 1.x and 0.x, openai (tests/node)
  pv_add_script_test(NAME api_sdk_clients
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/e2e/sdk_clients_test.mjs
    LABELS server TIMEOUT 300)
  # Claude Code in print mode (tests/claude)
  pv_add_script_test(NAME api_claude_code
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/e2e/claude_code_test.mjs
    LABELS server TIMEOUT 300)
  # forced tool calls and response_format through constrained decoding, on the fixtures
  pv_add_script_test(NAME api_tools
    COMMAND ${PV_NODE} ${CMAKE_SOURCE_DIR}/tests/e2e/tools_test.mjs
    LABELS server TIMEOUT 300)
else()
  pv_add_script_test(NAME server_http_missing_node
    COMMAND bash -c "echo 'node not found: server HTTP tests cannot run' >&2; [ -n \"$CI\" ] && exit 1; exit 77"
    LABELS server)
endif()
