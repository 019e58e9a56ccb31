sn_test(test_smoke SOURCES test_smoke.c)
