# service.cmake — the service lifecycle through the real binary on stories260K (skips when
# the model is absent): `start --background` / `status` / `stop` (PID file, log file,
# detaching), double start, stale PID files, port in use, SIGTERM drain of a live stream,
# drain timeout, second SIGINT, `stop --force`, SIGHUP live reload, SIGUSR1 snapshot.
pv_add_script_test(NAME service_lifecycle RUNNER python3
  COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/service_test.py
  LABELS server TIMEOUT 300)
