/* Exercises the C ABI of libhyper2kvm: version, probe of a real image, error codes and
 * messages for a missing file and NULL arguments, strerror truncation, free(NULL).
 * Built with -Wall -Wextra -Werror -fsanitize=address,undefined by `make test-c`.
 * Usage: probe_test IMAGE  (IMAGE: a VMDK made by qemu-img) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyper2kvm.h"

static int failures = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            failures++;                                                     \
        }                                                                   \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
        return 2;
    }
    const char *version = hyper2kvm_version();
    CHECK(version != NULL && strlen(version) > 0, "no version");

    char *json = NULL;
    hyper2kvm_result r = hyper2kvm_probe(argv[1], &json);
    CHECK(r == HYPER2KVM_RESULT_OK, "probe returned %u", (unsigned)r);
    CHECK(json != NULL && strstr(json, "\"format\":\"vmdk\"") != NULL, "json: %s", json ? json : "(null)");
    CHECK(json != NULL && strstr(json, "\"subformat\":\"monolithicSparse\"") != NULL, "json: %s", json ? json : "(null)");
    hyper2kvm_string_free(json);

    json = NULL;
    r = hyper2kvm_probe("/nonexistent/disk.vmdk", &json);
    CHECK(r == HYPER2KVM_RESULT_NOT_FOUND, "missing file gave %u", (unsigned)r);
    CHECK(json != NULL && strstr(json, "/nonexistent/disk.vmdk") != NULL, "error json: %s", json ? json : "(null)");
    CHECK(json != NULL && strstr(json, "\"kind\":\"not_found\"") != NULL, "error json: %s", json ? json : "(null)");
    hyper2kvm_string_free(json);

    CHECK(hyper2kvm_probe(NULL, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "NULL path");
    CHECK(hyper2kvm_probe(argv[1], NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "NULL out");
    hyper2kvm_string_free(NULL);

    char buf[64];
    size_t n = hyper2kvm_strerror(HYPER2KVM_RESULT_NOT_FOUND, buf, sizeof buf);
    CHECK(n == strlen(buf) && strcmp(buf, "no such file or directory") == 0, "strerror: %s", buf);
    char tiny[4];
    n = hyper2kvm_strerror(HYPER2KVM_RESULT_NOT_FOUND, tiny, sizeof tiny);
    CHECK(n == strlen("no such file or directory") && strcmp(tiny, "no ") == 0, "truncation: '%s' %zu", tiny, n);
    CHECK(hyper2kvm_strerror(HYPER2KVM_RESULT_CHECKSUM, NULL, 0) > 0, "length query");

    if (failures) {
        fprintf(stderr, "%d failed\n", failures);
        return 1;
    }
    printf("c abi: 9 passed, 0 failed\n");
    return 0;
}
