/*
 * tests/test_config.c — the command-line helpers of core/config.c that the
 * servers use (weft-echo, weft-kv, weft-chat; weft-http the first two):
 * weft_parse_number, weft_parse_cpus and the server-option table
 * (weft_config_options / weft_config_option).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/weft.h"

static void test_number(void **state)
{
    (void)state;
    long long v = -1;
    assert_int_equal(weft_parse_number("64K", 0, 1 << 20, &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(weft_parse_number("2M", 0, 1LL << 30, &v), 0);
    assert_int_equal(v, 2 << 20);
    assert_int_equal(weft_parse_number("1G", 0, 1LL << 30, &v), 0);
    assert_int_equal(v, 1LL << 30);
    assert_int_equal(weft_parse_number("2G", 0, 1LL << 30, &v), -EINVAL); /* above hi */
    /* No sign is accepted, even where lo would allow a negative value. */
    assert_int_equal(weft_parse_number("-1", -5, 5, &v), -EINVAL);
    assert_int_equal(weft_parse_number("12x", 0, 100, &v), -EINVAL);
    assert_int_equal(weft_parse_number("", 0, 100, &v), -EINVAL);
}

static void test_cpus(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    assert_int_equal(weft_parse_cpus("0-3,8", &c), 0);
    assert_int_equal(c.ncpus, 5);
    assert_int_equal(c.cpus[3], 3);
    assert_int_equal(c.cpus[4], 8);
    assert_int_equal(weft_parse_cpus("3-1", &c), -EINVAL);
    assert_int_equal(weft_parse_cpus("1024", &c), -EINVAL);
    assert_int_equal(weft_parse_cpus("", &c), -EINVAL);
    /* A CPU listed twice would put two workers on it: refused. */
    assert_int_equal(weft_parse_cpus("0-1,1", &c), -EINVAL);
    assert_int_equal(weft_parse_cpus("2,2", &c), -EINVAL);
}

/* Validation checks the CPUs against this process's affinity mask. */
static void test_cpus_allowed(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    const char *why = NULL;
    assert_int_equal(weft_parse_cpus("1023", &c), 0);
    assert_int_equal(weft_config_validate(&c, &why), -EINVAL);
    assert_non_null(strstr(why, "affinity mask"));
    c = weft_config_default();
    assert_int_equal(weft_config_validate(&c, &why), 0);
}

/* The backend: a known name, the environment's default, or an error. */
static void test_io(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    const char *why = NULL;
    assert_int_equal(weft_config_option(&c, "io", "poll", &why), 0);
    assert_string_equal(c.io, "poll");
    assert_int_equal(weft_config_option(&c, "io", "kqueue", &why), -EINVAL);
    assert_string_equal(c.io, "poll");
    assert_int_equal(weft_config_option(&c, "io", "", &why), -EINVAL);
    c.io = "select";
    assert_int_equal(weft_config_validate(&c, &why), -EINVAL);
    c.io = NULL;
    const char *old = getenv("WEFT_IO");
    setenv("WEFT_IO", "nonsense", 1);
    assert_int_equal(weft_config_validate(&c, &why), -EINVAL);
    assert_non_null(strstr(why, "WEFT_IO"));
    setenv("WEFT_IO", "epoll", 1);
    assert_int_equal(weft_config_validate(&c, &why), 0);
    if (old)
        setenv("WEFT_IO", old, 1);
    else
        unsetenv("WEFT_IO");
}

/* Placement: node by default; cpu, node, none by name; nothing else. */
static void test_pin(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    const char *why = NULL;
    assert_int_equal(c.pin, WEFT_PIN_NODE);
    assert_int_equal(weft_config_option(&c, "pin", "cpu", &why), 0);
    assert_int_equal(c.pin, WEFT_PIN_CPU);
    assert_int_equal(weft_config_option(&c, "pin", "none", &why), 0);
    assert_int_equal(c.pin, WEFT_PIN_NONE);
    assert_int_equal(weft_config_option(&c, "pin", "node", &why), 0);
    assert_int_equal(c.pin, WEFT_PIN_NODE);
    assert_int_equal(weft_config_option(&c, "pin", "core", &why), -EINVAL);
    assert_string_equal(why, "expected node, cpu or none");
    c.pin = 7;
    assert_int_equal(weft_config_validate(&c, &why), -EINVAL);
}

static void test_options(void **state)
{
    (void)state;
    size_t n = 0;
    const weft_option *o = weft_config_options(&n);
    assert_true(n >= 26);
    int seen_port = 0, seen_nopin = 0;
    for (size_t i = 0; i < n; i++) {
        seen_port += strcmp(o[i].name, "port") == 0 && o[i].has_arg == 1;
        seen_nopin += strcmp(o[i].name, "no-pin") == 0 && o[i].has_arg == 0;
    }
    assert_int_equal(seen_port, 1);
    assert_int_equal(seen_nopin, 1);
    /* Every option documents itself for --help; flags have no value name. */
    for (size_t i = 0; i < n; i++) {
        assert_non_null(o[i].help);
        assert_true(strlen(o[i].help) > 10);
        assert_true((o[i].arg != NULL) == (o[i].has_arg == 1));
    }

    weft_config c = weft_config_default();
    const char *why = "unset";
    assert_int_equal(weft_config_option(&c, "port", "8080", &why), 0);
    assert_null(why);
    assert_int_equal(c.port, 8080);
    assert_int_equal(weft_config_option(&c, "pool-max", "4M", NULL), 0);
    assert_int_equal(c.pool_max_bytes, 4u << 20);
    assert_int_equal(weft_config_option(&c, "workers", "3", NULL), 0);
    assert_int_equal(c.workers, 3);
    const char *path = "/tmp/x.sock";
    assert_int_equal(weft_config_option(&c, "stats-socket", path, NULL), 0);
    assert_ptr_equal(c.admin_socket, path); /* kept, not copied */
    assert_int_equal(weft_config_option(&c, "no-pin", NULL, NULL), 0);
    assert_int_equal(c.pin, WEFT_PIN_NONE);
    assert_int_equal(weft_config_option(&c, "cpus", "1,2", NULL), 0);
    assert_int_equal(c.ncpus, 2);

    /*
     * A bad number leaves its field alone and says why. A bad CPU list
     * says why too, but does not leave the list alone: weft_parse_cpus
     * fills cpus/ncpus as it reads, so they are not to be used after the
     * error (the programs exit on it).
     */
    assert_int_equal(weft_config_option(&c, "port", "70000", &why), -EINVAL);
    assert_string_equal(why, "expected a number from 0 to 65535");
    assert_int_equal(c.port, 8080);
    assert_int_equal(weft_config_option(&c, "cpus", "x", &why), -EINVAL);
    assert_string_equal(why, "expected a CPU list such as 0-3,8, each CPU once");
    assert_int_equal(weft_config_option(&c, "port", NULL, &why), -EINVAL);
    assert_int_equal(weft_config_option(&c, "lines", "1", &why), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number),       cmocka_unit_test(test_cpus),
        cmocka_unit_test(test_cpus_allowed), cmocka_unit_test(test_io),
        cmocka_unit_test(test_pin),          cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
