/* SPDX-License-Identifier: MIT */
/* A C11 host using the built-in host.polyplug.Runtime@1 contract: discover and load a plugin
 * directory (providers first, a malformed bundle skipped and reported), read bundle metadata,
 * set the unmap policy, cascade-unload. argv[1] = directory holding the fixture plugins. */
#define _POSIX_C_SOURCE 200809L
#include <polyplug/abi.h>
#include <polyplug/runtime_contract.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;
#define EXPECT(cond)                                                                      \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "c_runtime_contract: line %d: FAILED %s\n", __LINE__, #cond); \
            ++failures;                                                                   \
        }                                                                                 \
    } while (0)

/* Whether `needle` occurs in the `len` bytes at `text` (memmem is a GNU extension). */
static int contains(const uint8_t* text, size_t len, const char* needle) {
    const size_t n = strlen(needle);
    for (size_t i = 0; text != NULL && i + n <= len; ++i)
        if (memcmp(text + i, needle, n) == 0) return 1;
    return 0;
}

static int copy_file(const char* from, const char* to) {
    FILE* in = fopen(from, "rb");
    FILE* out = fopen(to, "wb");
    int ok = in != NULL && out != NULL;
    char chunk[65536];
    size_t n;
    while (ok && (n = fread(chunk, 1, sizeof chunk, in)) > 0) ok = fwrite(chunk, 1, n, out) == n;
    if (in) fclose(in);
    if (out) fclose(out);
    return ok;
}

/* Writes <root>/<name>/manifest.toml and copies fixture_<library>.so beside it. */
static void make_bundle(const char* root, const char* fixtures, const char* name,
                        const char* library, const char* extra) {
    char path[4096], from[4096];
    snprintf(path, sizeof path, "%s/%s", root, name);
    mkdir(path, 0700);
    snprintf(from, sizeof from, "%s/fixture_%s.so", fixtures, library);
    snprintf(path, sizeof path, "%s/%s/lib%s.so", root, name, name);
    EXPECT(copy_file(from, path));
    snprintf(path, sizeof path, "%s/%s/manifest.toml", root, name);
    FILE* manifest = fopen(path, "w");
    EXPECT(manifest != NULL);
    if (manifest == NULL) return;
    fprintf(manifest,
            "id = \"0x%016llx\"\nname = \"%s\"\nversion = \"1.0.0\"\nloader = \"native\"\n",
            (unsigned long long)polyplug_bundle_id(name, strlen(name)), name);
    fprintf(manifest, "file = \"lib%s.so\"\n%s", name, extra);
    fclose(manifest);
}

static void remove_tree(const char* root) {
    const char* names[] = {"a-depender", "b-adder", "broken"};
    char path[4096];
    for (size_t i = 0; i < 3; ++i) {
        snprintf(path, sizeof path, "%s/%s/manifest.toml", root, names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s/lib%s.so", root, names[i], names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        rmdir(path);
    }
    rmdir(root);
}

/* Writes `text` to <root>/<name>; returns the path in `path`. */
static void write_file(const char* root, const char* name, const char* text, char* path,
                       size_t size) {
    snprintf(path, size, "%s/%s", root, name);
    FILE* file = fopen(path, "w");
    EXPECT(file != NULL);
    if (file == NULL) return;
    fputs(text, file);
    fclose(file);
}

/* DescribeContractFile: the layouts of a good file as text; a bad file's line and column. */
static void check_describe(const HostApi* host, const HostContractInterface* rt,
                           HostContractInstance self, const char* root) {
    char path[4096];
    write_file(
        root, "good.api.toml",
        "[[types]]\nname = \"Pair\"\n"
        "fields = [{ name = \"tag\", type = \"u8\" }, { name = \"value\", type = \"f64\" }]\n"
        "[[guest_contract]]\nname = \"test.describe\"\nversion = \"2.3.4\"\n"
        "[[guest_contract.functions]]\nname = \"swap\"\n"
        "params = [{ name = \"flag\", type = \"bool\" }, { name = \"p\", type = \"Pair\" }]\n"
        "return = \"Array<Pair>\"\n",
        path, sizeof path);
    PolyplugDescribeContractFileArgs args = {{(const uint8_t*)path, strlen(path)}};
    Buffer text = {NULL, 0, 0};
    AbiError err = {0, {NULL, 0}};
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_DescribeContractFile)(self, &args, &text, &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    char expected[512];
    snprintf(expected, sizeof expected,
             "polyplug-contracts 1\n"
             "struct Pair 16 8 2\nfield tag u8 0\nfield value f64 8\n"
             "contract guest test.describe 2 3 4 0x%016llx 0 1\n"
             "function swap 0 24 8 Array<Pair> 2\nparam flag bool 0\nparam p Pair 8\n",
             (unsigned long long)polyplug_guest_contract_id("test.describe", 13, 2));
    EXPECT(text.len == strlen(expected) && memcmp(text.ptr, expected, text.len) == 0);
    if (text.len != strlen(expected) || memcmp(text.ptr, expected, text.len) != 0)
        fprintf(stderr, "got:\n%.*s\nexpected:\n%s", (int)text.len, (const char*)text.ptr,
                expected);
    host->free(host, text.ptr, text.cap, 1);
    unlink(path);

    /* A rule broken on line 3: the error names the file, the line and the column. */
    write_file(root, "bad.api.toml", "[[guest_contract]]\nname = \"test.bad\"\nversion = \"one\"\n",
               path, sizeof path);
    args.path.ptr = (const uint8_t*)path;
    args.path.len = strlen(path);
    text.ptr = (uint8_t*)root; /* must be reset by the call */
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_DescribeContractFile)(self, &args, &text, &err);
    EXPECT(err.code != AbiErrorCode_Ok);
    EXPECT(text.ptr == NULL && text.len == 0);
    char message[1024];
    const size_t len = host->get_last_error(host, (uint8_t*)message, sizeof message - 1);
    message[len < sizeof message ? len : sizeof message - 1] = '\0';
    EXPECT(strstr(message, "bad.api.toml:3:") != NULL);
    unlink(path);

    /* A missing file and a path that is not UTF-8 are refused the same way. */
    args.path.ptr = (const uint8_t*)"/nonexistent/x.api.toml";
    args.path.len = strlen("/nonexistent/x.api.toml");
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_DescribeContractFile)(self, &args, &text, &err);
    EXPECT(err.code != AbiErrorCode_Ok);
    EXPECT(host->get_error_len(host) > 0);
    static const uint8_t not_utf8[] = {0xff, 0xfe};
    args.path.ptr = not_utf8;
    args.path.len = sizeof not_utf8;
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_DescribeContractFile)(self, &args, &text, &err);
    EXPECT(err.code != AbiErrorCode_Ok);
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_DescribeContractFile)(self, NULL, &text, &err);
    EXPECT(err.code == AbiErrorCode_InvalidPointer);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c_runtime_contract FIXTURE_DIR\n");
        return 2;
    }
    char root[] = "/tmp/polyplug-c-runtime-contract-XXXXXX";
    if (mkdtemp(root) == NULL) return 2;
    make_bundle(root, argv[1], "b-adder", "adder",
                "provides = [\"test.add@1\", \"test.counter@1\"]\n"
                "function_count = { \"test.add@1\" = 1, \"test.counter@1\" = 1 }\n");
    make_bundle(root, argv[1], "a-depender", "depender",
                "provides = [\"test.depender@1\"]\nfunction_count = { \"test.depender@1\" = 1 }\n"
                "[[dependency]]\ncontract = \"test.add@1\"\nmin_version = \"1.0\"\n");
    char broken[4096];
    snprintf(broken, sizeof broken, "%s/broken", root);
    mkdir(broken, 0700);
    snprintf(broken, sizeof broken, "%s/broken/manifest.toml", root);
    FILE* bad = fopen(broken, "w");
    if (bad != NULL) {
        fputs("name = \"broken\"\n[[[ not toml\n", bad);
        fclose(bad);
    }

    const HostApi* host = polyplug_runtime_create(NULL);
    EXPECT(host != NULL);
    if (host == NULL) return 1;
    const HostContractInterface* rt = host->resolve_host_contract_interface(
        host, POLYPLUG_RUNTIME_CONTRACT_ID, (POLYPLUG_RUNTIME_CONTRACT_MAJOR << 16));
    HostContractInstance self = host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    EXPECT(rt != NULL);
    EXPECT(self.data != NULL);
    if (rt == NULL) return 1;
    EXPECT(rt->singleton);
    EXPECT(polyplug_runtime_fn(rt, PolyplugRuntimeFn_Count) == NULL);

    /* Discover and load: the depender sorts first by name but must load second. */
    StringView dirs[] = {{(const uint8_t*)root, strlen(root)}};
    PolyplugLoadDirsArgs load_args = {dirs, 1};
    PolyplugLoadDirsResult loaded;
    AbiError err = {0, {NULL, 0}};
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_LoadDirs)(self, &load_args, &loaded, &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    EXPECT(loaded.loaded == 2);
    EXPECT(loaded.skipped == 1);
    EXPECT(contains(loaded.diagnostics.ptr, loaded.diagnostics.len, "broken"));
    host->free(host, loaded.diagnostics.ptr, loaded.diagnostics.cap, 1);
    ArrayOf_BundleId ids = host->list_bundles(host);
    EXPECT(ids.len == 2);
    EXPECT(ids.len == 2 && ids.items[0] == polyplug_bundle_id("b-adder", 7)); /* load order */
    host->free(host, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);

    /* Metadata. */
    PolyplugBundleInfoArgs info_args = {polyplug_bundle_id("a-depender", 10)};
    PolyplugBundleInfo info;
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_BundleInfo)(self, &info_args, &info, &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    EXPECT(info.name.len == 10 && memcmp(info.name.ptr, "a-depender", 10) == 0);
    EXPECT(info.loader.len == 6 && memcmp(info.loader.ptr, "native", 6) == 0);
    EXPECT(info.version.major == 1);
    EXPECT(info.contracts.len == 1 &&
           info.contracts.items[0] == polyplug_guest_contract_id("test.depender", 13, 1));
    polyplug_bundle_info_free(host, &info);
    info_args.bundle_id = 42;
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_BundleInfo)(self, &info_args, &info, &err);
    EXPECT(err.code == AbiErrorCode_Generic);
    EXPECT(host->get_error_len(host) > 0);

    /* Unmap policy: valid and invalid. */
    PolyplugUnmapPolicyArgs policy = {0, 0};
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_SetUnmapPolicy)(self, &policy, NULL, &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    policy.policy = 7;
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_SetUnmapPolicy)(self, &policy, NULL, &err);
    EXPECT(err.code == AbiErrorCode_Generic);

    /* The plain unload refuses; the cascade takes the dependent first. */
    host->unload_bundle(host, polyplug_bundle_id("b-adder", 7), &err);
    EXPECT(err.code == AbiErrorCode_Generic);
    PolyplugUnloadArgs unload = {polyplug_bundle_id("b-adder", 7)};
    uint32_t unloaded = 0;
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_UnloadCascade)(self, &unload, &unloaded, &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    EXPECT(unloaded == 2);
    EXPECT(host->list_bundles(host).len == 0);

    /* Null arguments are refused, not dereferenced. */
    polyplug_runtime_fn(rt, PolyplugRuntimeFn_UnloadCascade)(self, NULL, &unloaded, &err);
    EXPECT(err.code == AbiErrorCode_InvalidPointer);
    check_describe(host, rt, self, root);

    polyplug_runtime_destroy(host);
    remove_tree(root);
    printf("c_runtime_contract: %s\n", failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
