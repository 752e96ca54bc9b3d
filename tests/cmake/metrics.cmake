# metrics.cmake — structured logs and Prometheus metrics (issue 5): the unit test of the
# logging layer (JSON lines, text fields, rotation, threads) and of the metrics registry
# (histograms, per-request records, exposition text), and the end-to-end test of GET
# /metrics and the request log on the real server (stories260K; parsed with the npm
# parse-prometheus-text-format package in tests/node).
pv_add_test(NAME test_metrics
            SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_metrics.c ${CMAKE_SOURCE_DIR}/src/server/metrics.c
            LABELS server TIMEOUT 120)
pv_add_script_test(NAME metrics_e2e RUNNER node
  COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/metrics_test.mjs
  LABELS server TIMEOUT 300)
