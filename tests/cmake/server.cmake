# server.cmake — tests of the HTTP layer (src/server): a cmocka unit test of the response
# helpers (error shapes, JSON body parsing, request ids, key comparison) and the black-box
# test of `pensieve start` over raw sockets with Node (stories260K; skips when absent), and
# the end-to-end tests with real clients (SDKs, Claude Code) and tool use on the fixtures.
pv_add_test(NAME test_server_http_util SOURCES ${CMAKE_SOURCE_DIR}/tests/server/test_http_util.c
            LIBS pv_server pv_api pv_template pv_toolcall pv_grammar pv_sched pv_model pv_tokenizer pv_sampler pv_gguf pv_kernels
            LABELS server TIMEOUT 60)
# the raw-socket HTTP test, the generation routes on the real engine, the real clients
# (@anthropic-ai/sdk 1.x and 0.x, openai: tests/node), Claude Code in print mode
# (tests/claude), and forced tool calls / response_format through constrained decoding
foreach(t server_http:tests/server/test_server_http.mjs api_generation:tests/e2e/api_gen_test.mjs
          api_sdk_clients:tests/e2e/sdk_clients_test.mjs api_claude_code:tests/e2e/claude_code_test.mjs
          api_tools:tests/e2e/tools_test.mjs)
  string(REPLACE ":" ";" t ${t})
  list(GET t 0 name)
  list(GET t 1 script)
  pv_add_script_test(NAME ${name} RUNNER node COMMAND ${CMAKE_SOURCE_DIR}/${script}
    LABELS server TIMEOUT 300)
endforeach()
