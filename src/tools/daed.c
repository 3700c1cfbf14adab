/* daed.c — the daed service: read the options, serve until SIGTERM, exit 0 after a drain. */
#include <stdio.h>
#include <stdlib.h>

#include "daed/serve/serve.h"

extern char **environ;

int main(int argc, char **argv)
{
    int want = dae_serve_config_wants(argc, argv);
    if (want == 'h') {
        dae_serve_config_help(stdout, "daed");
        return 0;
    }
    if (want == 'v') {
        printf("daed 1.0\n");
        return 0;
    }
    dae_serve_config cfg;
    dae_error err = {0};
    if (dae_serve_config_parse(&cfg, argc, argv, environ, &err) != DAE_OK) {
        fprintf(stderr, "daed: %s\n", err.msg);
        return 2;
    }
    dae_server *s = dae_server_create(&cfg, &err);
    if (!s) {
        dae_log(DAE_LOG_ERROR, "daed cannot start: %s", err.msg);
        return 1;
    }
    /* A drain cut short by --shutdown-timeout is logged; the exit is still 0 (a requested
     * stop that completed). */
    dae_server_run(s);
    dae_server_free(s);
    return 0;
}
