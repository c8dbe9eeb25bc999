/* The smallest C program for the static base: glibc, statically linked. */
#include <stdio.h>

int main(void) {
    puts("Hello Distroless");
    return 0;
}
