# service.cmake — the service lifecycle through the real binary on stories260K (skips when
# the model is absent): `start --background` / `status` / `stop` (PID file, log file,
# detaching), double start, stale PID files, port in use, SIGTERM drain of a live stream,
# drain timeout, second SIGINT, `stop --force`, SIGHUP live reload, SIGUSR1 snapshot.
find_program(PV_PYTHON3 python3)
if(PV_PYTHON3)
  pv_add_script_test(NAME service_lifecycle
    COMMAND ${PV_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/e2e/service_test.py
    LABELS server TIMEOUT 300)
else()
  pv_add_script_test(NAME service_lifecycle_missing_python
    COMMAND bash -c "echo 'python3 not found: service lifecycle test cannot run' >&2; [ -n \"$CI\" ] && exit 1; exit 77"
    LABELS server)
endif()
