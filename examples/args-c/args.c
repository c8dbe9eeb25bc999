/* Prints each argument on its own line, then exits with the status an `exit=N` argument asks for
 * (0 without one): what `pants run examples/args-c:args-c -- ...` passes through, and back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++) {
        printf("arg %d: %s\n", i, argv[i]);
        if (strncmp(argv[i], "exit=", 5) == 0) {
            status = atoi(argv[i] + 5);
        }
    }
    return status;
}
