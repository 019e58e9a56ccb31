/* main.c: the `shardnet` command line (placeholder until the trainer lands). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--version") == 0)) {
        printf("shardnet %s\n", SHARDNET_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: shardnet --version\n");
    return 2;
}
