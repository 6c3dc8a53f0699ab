/* Exercises the C ABI of libhyper2kvm as a C program would: version; probe of a real image;
 * options → job → convert with progress callbacks; a second conversion cancelled from another
 * thread; the KubeVirt target (bad values refused; a conversion and a manifest run write
 * NAME.kubevirt.yaml, which test-c.sh validates); manifests (a good one run and dry-run, a bad
 * one refused); inspect's argument
 * checks; error codes, last-error messages and JSON for a missing file, a bad manifest and
 * NULL arguments; strerror truncation; every _free(NULL).
 * Built with -Wall -Wextra -Werror -fsanitize=address,undefined (leaks fail the run) by
 * scripts/test-c.sh, which makes the inputs.
 * Usage: api_test DIR  (DIR holds disk.vmdk, big.raw, good.json, bad.json and out/; the
 * KubeVirt conversion writes DIR/kv/) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hyper2kvm.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#define S(p) ((p) ? (p) : "(null)")

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole of a small text file (NULL if unreadable); free() it. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf) buf[fread(buf, 1, (1 << 16) - 1, f)] = 0;
    fclose(f);
    return buf;
}

struct progress {
    atomic_int calls;
    atomic_int convert_calls;
    atomic_ullong last_done;
};

static void on_progress(void *user_data, const char *stage, const char *item, uint64_t done,
                        uint64_t total) {
    struct progress *p = user_data;
    (void)item;
    (void)total;
    atomic_fetch_add(&p->calls, 1);
    if (strcmp(stage, "convert") == 0) {
        atomic_fetch_add(&p->convert_calls, 1);
        atomic_store(&p->last_done, done);
    }
}

struct convert_call {
    const hyper2kvm_job *job;
    const char *input;
    hyper2kvm_result result;
    char *json;
};

static void *convert_thread(void *arg) {
    struct convert_call *c = arg;
    c->result = hyper2kvm_convert(c->job, c->input, &c->json);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char disk[4096], big[4096], good[4096], bad[4096], out[4096], kv[4096], path[8192];
    snprintf(disk, sizeof disk, "%s/disk.vmdk", argv[1]);
    snprintf(big, sizeof big, "%s/big.raw", argv[1]);
    snprintf(good, sizeof good, "%s/good.json", argv[1]);
    snprintf(bad, sizeof bad, "%s/bad.json", argv[1]);
    snprintf(out, sizeof out, "%s/out", argv[1]);
    snprintf(kv, sizeof kv, "%s/kv", argv[1]);

    const char *version = hyper2kvm_version();
    CHECK(version != NULL && strlen(version) > 0, "no version");

    /* probe */
    char *json = NULL;
    hyper2kvm_result r = hyper2kvm_probe(disk, &json);
    CHECK(r == HYPER2KVM_RESULT_OK, "probe returned %u", (unsigned)r);
    CHECK(json && strstr(json, "\"format\":\"vmdk\""), "json: %s", S(json));
    CHECK(json && strstr(json, "\"subformat\":\"monolithicSparse\""), "json: %s", S(json));
    hyper2kvm_string_free(json);
    json = NULL;
    r = hyper2kvm_probe("/nonexistent/disk.vmdk", &json);
    CHECK(r == HYPER2KVM_RESULT_NOT_FOUND, "missing file gave %u", (unsigned)r);
    CHECK(json && strstr(json, "/nonexistent/disk.vmdk") && strstr(json, "\"kind\":\"not_found\""),
          "error json: %s", S(json));
    hyper2kvm_string_free(json);

    /* options → job → convert, with progress */
    hyper2kvm_options *opts = NULL;
    CHECK(hyper2kvm_options_new(&opts) == HYPER2KVM_RESULT_OK && opts, "options_new");
    CHECK(hyper2kvm_options_set_output_dir(opts, out) == HYPER2KVM_RESULT_OK, "output dir");
    CHECK(hyper2kvm_options_set_format(opts, "qcow2") == HYPER2KVM_RESULT_OK, "format");
    CHECK(hyper2kvm_options_set_format(opts, "vmdk") == HYPER2KVM_RESULT_INVALID_INPUT, "bad format");
    CHECK(hyper2kvm_options_set_compress(opts, 12) == HYPER2KVM_RESULT_INVALID_INPUT, "bad level");
    CHECK(hyper2kvm_options_set_fix(opts, false) == HYPER2KVM_RESULT_OK, "fix off");
    struct progress prog = {0};
    CHECK(hyper2kvm_options_set_progress(opts, on_progress, &prog) == HYPER2KVM_RESULT_OK, "progress");
    hyper2kvm_job *job = NULL;
    CHECK(hyper2kvm_job_new(opts, &job) == HYPER2KVM_RESULT_OK && job, "job_new");
    json = NULL;
    r = hyper2kvm_convert(job, disk, &json);
    CHECK(r == HYPER2KVM_RESULT_OK, "convert returned %u: %s", (unsigned)r, S(json));
    CHECK(json && strstr(json, "\"outputs\"") && strstr(json, "disk.qcow2"), "report: %s", S(json));
    snprintf(path, sizeof path, "%s/disk.qcow2", out);
    CHECK(exists(path), "%s missing", path);
    CHECK(atomic_load(&prog.convert_calls) > 0, "progress: %d calls, %d in convert",
          atomic_load(&prog.calls), atomic_load(&prog.convert_calls));
    hyper2kvm_string_free(json);
    char *msg = (char *)1;
    CHECK(hyper2kvm_job_last_error(job, &msg) == HYPER2KVM_RESULT_OK && msg == NULL, "no error yet");

    /* a missing input: code, JSON and the job's last error */
    json = NULL;
    r = hyper2kvm_convert(job, "/nonexistent/in.vmdk", &json);
    CHECK(r == HYPER2KVM_RESULT_NOT_FOUND, "missing input gave %u", (unsigned)r);
    CHECK(hyper2kvm_job_last_error(job, &msg) == HYPER2KVM_RESULT_OK && msg &&
              strstr(msg, "/nonexistent/in.vmdk"),
          "last error: %s", S(msg));
    hyper2kvm_string_free(msg);
    hyper2kvm_string_free(json);
    hyper2kvm_job_free(job);

    /* the KubeVirt target: bad values refused, then NAME.kubevirt.yaml beside the disk */
    CHECK(hyper2kvm_options_set_target(opts, "openstack") == HYPER2KVM_RESULT_INVALID_INPUT, "target");
    CHECK(hyper2kvm_options_set_namespace(opts, "Not_A_Label") == HYPER2KVM_RESULT_INVALID_INPUT,
          "namespace");
    CHECK(hyper2kvm_options_set_datavolume_source(opts, "http://x") == HYPER2KVM_RESULT_INVALID_INPUT,
          "source");
    CHECK(hyper2kvm_options_set_datavolume_source(opts, NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT,
          "source NULL");
    CHECK(hyper2kvm_options_set_target(opts, "kubevirt") == HYPER2KVM_RESULT_OK, "kubevirt");
    CHECK(hyper2kvm_options_set_namespace(opts, "vms") == HYPER2KVM_RESULT_OK, "vms");
    CHECK(hyper2kvm_options_set_datavolume_source(opts, "pvc:imports") == HYPER2KVM_RESULT_OK, "pvc");
    CHECK(hyper2kvm_options_set_output_dir(opts, kv) == HYPER2KVM_RESULT_OK, "kv dir");
    hyper2kvm_job *kjob = NULL;
    CHECK(hyper2kvm_job_new(opts, &kjob) == HYPER2KVM_RESULT_OK, "job_new kubevirt");
    json = NULL;
    r = hyper2kvm_convert(kjob, disk, &json);
    CHECK(r == HYPER2KVM_RESULT_OK && json && strstr(json, "disk.kubevirt.yaml"), "kubevirt: %s",
          S(json));
    hyper2kvm_string_free(json);
    hyper2kvm_job_free(kjob);
    snprintf(path, sizeof path, "%s/disk.kubevirt.yaml", kv);
    char *yaml = slurp(path);
    CHECK(yaml && strstr(yaml, "kind: VirtualMachine") && strstr(yaml, "kind: DataVolume") &&
              strstr(yaml, "namespace: vms") && strstr(yaml, "namespace: imports"),
          "%s: %s", path, S(yaml));
    free(yaml);
    /* back to the defaults for what follows */
    CHECK(hyper2kvm_options_set_target(opts, "libvirt") == HYPER2KVM_RESULT_OK, "libvirt");
    CHECK(hyper2kvm_options_set_namespace(opts, NULL) == HYPER2KVM_RESULT_OK, "no namespace");
    hyper2kvm_options_set_output_dir(opts, out);

    /* a second conversion, cancelled from this thread while another runs it */
    struct progress prog2 = {0};
    hyper2kvm_options_set_progress(opts, on_progress, &prog2);
    hyper2kvm_options_set_compress(opts, 9);
    hyper2kvm_job *slow = NULL;
    CHECK(hyper2kvm_job_new(opts, &slow) == HYPER2KVM_RESULT_OK, "job_new 2");
    struct convert_call call = {slow, big, HYPER2KVM_RESULT_OK, NULL};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, convert_thread, &call) == 0, "pthread_create");
    for (int i = 0; i < 600 && atomic_load(&prog2.last_done) == 0; i++) usleep(50000);
    CHECK(atomic_load(&prog2.last_done) > 0, "the slow conversion never progressed");
    CHECK(hyper2kvm_job_cancel(slow) == HYPER2KVM_RESULT_OK, "cancel");
    pthread_join(t, NULL);
    CHECK(call.result == HYPER2KVM_RESULT_CANCELLED, "cancelled conversion gave %u: %s",
          (unsigned)call.result, S(call.json));
    CHECK(call.json && strstr(call.json, "\"kind\":\"cancelled\""), "json: %s", S(call.json));
    snprintf(path, sizeof path, "%s/big.qcow2", out);
    CHECK(!exists(path), "a cancelled conversion left %s", path);
    snprintf(path, sizeof path, "%s/.big.qcow2.hyper2kvm-part", out);
    CHECK(!exists(path), "a cancelled conversion left %s", path);
    hyper2kvm_string_free(call.json);
    hyper2kvm_job_free(slow);

    /* manifests */
    hyper2kvm_options *mopts = NULL;
    hyper2kvm_options_new(&mopts);
    hyper2kvm_options_set_target(mopts, "kubevirt");
    hyper2kvm_job *mjob = NULL;
    hyper2kvm_job_new(mopts, &mjob);
    json = NULL;
    r = hyper2kvm_run_manifest(mjob, bad, &json);
    CHECK(r == HYPER2KVM_RESULT_INVALID_INPUT, "bad manifest gave %u", (unsigned)r);
    CHECK(json && strstr(json, "manifest_version") && strstr(json, "bad.json"), "json: %s", S(json));
    CHECK(hyper2kvm_job_last_error(mjob, &msg) == HYPER2KVM_RESULT_OK && msg &&
              strstr(msg, "problem(s)"),
          "last error: %s", S(msg));
    hyper2kvm_string_free(msg);
    hyper2kvm_string_free(json);
    hyper2kvm_options_set_dry_run(mopts, true);
    hyper2kvm_job *dry = NULL;
    hyper2kvm_job_new(mopts, &dry);
    json = NULL;
    r = hyper2kvm_run_manifest(dry, good, &json);
    CHECK(r == HYPER2KVM_RESULT_OK && json && strstr(json, "\"dry_run\":true") &&
              strstr(json, "web01.kubevirt.yaml"),
          "dry run: %s", S(json));
    snprintf(path, sizeof path, "%s/manifest-out/web01.qcow2", argv[1]);
    CHECK(!exists(path), "a dry run wrote %s", path);
    hyper2kvm_string_free(json);
    json = NULL;
    r = hyper2kvm_run_manifest(mjob, good, &json);
    CHECK(r == HYPER2KVM_RESULT_OK && json && strstr(json, "\"success\":true"), "run: %s", S(json));
    CHECK(exists(path), "%s missing after the run", path);
    snprintf(path, sizeof path, "%s/manifest-out/web01.kubevirt.yaml", argv[1]);
    CHECK(exists(path), "%s missing after the run with the kubevirt target", path);
    hyper2kvm_string_free(json);

    /* NULL arguments and bad strings */
    CHECK(hyper2kvm_options_new(NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "options_new(NULL)");
    CHECK(hyper2kvm_job_new(NULL, &job) == HYPER2KVM_RESULT_NULL_ARGUMENT, "job_new(NULL)");
    CHECK(hyper2kvm_job_new(opts, NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "job_new(, NULL)");
    CHECK(hyper2kvm_convert(NULL, disk, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "convert(NULL)");
    CHECK(hyper2kvm_convert(mjob, NULL, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "convert(, NULL)");
    CHECK(hyper2kvm_convert(mjob, disk, NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "convert(,, NULL)");
    CHECK(hyper2kvm_run_manifest(mjob, NULL, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "manifest NULL");
    CHECK(hyper2kvm_inspect(mjob, NULL, 1, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "inspect NULL");
    const char *none[] = {NULL};
    CHECK(hyper2kvm_inspect(mjob, none, 1, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "inspect [NULL]");
    const char *badutf8[] = {"\xff\xfe"};
    CHECK(hyper2kvm_inspect(mjob, badutf8, 1, &json) == HYPER2KVM_RESULT_INVALID_UTF8, "utf-8");
    CHECK(hyper2kvm_job_cancel(NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "cancel(NULL)");
    CHECK(hyper2kvm_job_last_error(NULL, &msg) == HYPER2KVM_RESULT_NULL_ARGUMENT, "last_error(NULL)");
    CHECK(hyper2kvm_options_set_output_dir(NULL, out) == HYPER2KVM_RESULT_NULL_ARGUMENT, "set(NULL)");
    CHECK(hyper2kvm_options_set_output_dir(opts, NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "set(, NULL)");
    CHECK(hyper2kvm_probe(NULL, &json) == HYPER2KVM_RESULT_NULL_ARGUMENT, "NULL path");
    CHECK(hyper2kvm_probe(disk, NULL) == HYPER2KVM_RESULT_NULL_ARGUMENT, "NULL out");
    hyper2kvm_string_free(NULL);
    hyper2kvm_job_free(NULL);
    hyper2kvm_options_free(NULL);

    /* strerror */
    char buf[64];
    size_t n = hyper2kvm_strerror(HYPER2KVM_RESULT_NOT_FOUND, buf, sizeof buf);
    CHECK(n == strlen(buf) && strcmp(buf, "no such file or directory") == 0, "strerror: %s", buf);
    char tiny[4];
    n = hyper2kvm_strerror(HYPER2KVM_RESULT_NOT_FOUND, tiny, sizeof tiny);
    CHECK(n == strlen("no such file or directory") && strcmp(tiny, "no ") == 0, "truncation: '%s' %zu", tiny, n);
    CHECK(hyper2kvm_strerror(HYPER2KVM_RESULT_CHECKSUM, NULL, 0) > 0, "length query");

    hyper2kvm_job_free(mjob);
    hyper2kvm_job_free(dry);
    hyper2kvm_options_free(mopts);
    hyper2kvm_options_free(opts);
    if (failures) {
        fprintf(stderr, "c abi: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("c abi: %d checks passed, 0 failed\n", checks);
    return 0;
}
