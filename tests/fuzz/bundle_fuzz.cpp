// SPDX-License-Identifier: MIT
/// @file fuzz/bundle_fuzz.cpp
/// libFuzzer target: runtime::load_bundle on a bundle directory written from the input, a
/// manifest.toml and a native library. Any input must load or be refused, never crash, hang or
/// leak. A refusal must carry a message naming the bundle or its path and leave the runtime as it
/// was (no bundle, no contract); a load must dispatch test.add and unload cleanly; and every 64
/// inputs the runtime must still load, call and unload the pristine bundle.
///
/// Input: [u16 LE n][n bytes: manifest.toml][library description]. The description is
/// [u8 flags][u32 LE length][patches: (u16 LE position, u8 value)...]: with flags bit 0 the
/// library is cut to `length % (size + 1)` bytes; each patch sets one byte of the library.
///
/// The library is always the real fixture_adder.so (its path is compiled in, read once), and
/// patches reach only what detail/elf_check.hpp claims to check: `position` indexes, modulo
/// their total, the bytes of the ELF header, then the program header table, then the dynamic
/// section. Relocation tables, symbol and hash tables, notes and code keep their bytes: their
/// contents are trusted (loading native code runs it), so corrupting them would test the
/// plugin, not the runtime. Two more limits of the check shape the scope:
/// - the values of DT_INIT and DT_FINI are left out: they are code addresses, and the check
///   can only tell that each is a function of the library, not that it is the right one;
/// - the check verifies the tables' addresses against the section headers, and a library
///   without them (e_shoff 0, as sstrip leaves it) can have its tables moved onto other bytes
///   undetected; so a patch that zeroes e_shoff is undone.
#include <polyplug/runtime.hpp>

#include <elf.h>
#include <link.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#ifndef POLYPLUG_FUZZ_FIXTURE
#error "build with -DPOLYPLUG_FUZZ_FIXTURE=\"path/to/fixture_adder.so\" (tests/fuzz/meson.build)"
#endif

namespace {

namespace fs = std::filesystem;

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "bundle_fuzz: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::abort();
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read the fixture library", path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Writes `path` as a new file renamed over the old one, as library writers should: the runtime
/// (and a library still mapped from the old file) never sees a half-written file.
void replace_file(const fs::path& path, std::string_view bytes) {
    const fs::path staging = path.string() + ".staging";
    {
        std::ofstream out(staging, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) fail("cannot write", staging.string());
    }
    fs::rename(staging, path);
}

std::string manifest_for(const std::string& name, const std::string& file) {
    return "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) + "\"\nname = \"" + name +
           "\"\nversion = \"1.0.0\"\nloader = \"native\"\nfile = \"" + file +
           "\"\nprovides = [\"test.add@1\", \"test.counter@1\"]\n"
           "function_count = { \"test.add@1\" = 1, \"test.counter@1\" = 1 }\n";
}

/// Byte ranges of the pristine library that patches may touch.
struct patchable {
    struct range {
        std::size_t offset, size;
    };
    std::vector<range> ranges;
    std::size_t total = 0;

    explicit patchable(const std::string& lib) {
        ElfW(Ehdr) eh;
        if (lib.size() < sizeof eh) fail("the fixture library is not ELF");
        std::memcpy(&eh, lib.data(), sizeof eh);
        add({0, sizeof eh});
        add({eh.e_phoff, std::size_t{eh.e_phnum} * sizeof(ElfW(Phdr))});
        bool dynamic = false;
        for (std::size_t i = 0; i < eh.e_phnum; ++i) {
            ElfW(Phdr) ph;
            std::memcpy(&ph, lib.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
            if (ph.p_type != PT_DYNAMIC) continue;
            dynamic = true;
            // Entry by entry, without the values of DT_INIT and DT_FINI (see the file comment).
            for (std::size_t at = 0; at + sizeof(ElfW(Dyn)) <= ph.p_filesz;
                 at += sizeof(ElfW(Dyn))) {
                ElfW(Dyn) d;
                std::memcpy(&d, lib.data() + ph.p_offset + at, sizeof d);
                const bool code = d.d_tag == DT_INIT || d.d_tag == DT_FINI;
                add({ph.p_offset + at, code ? sizeof d.d_tag : sizeof d});
            }
        }
        if (!dynamic) fail("the fixture library has no dynamic section");
    }
    void add(range r) {
        ranges.push_back(r);
        total += r.size;
    }
    /// The file offset of patch position `position`.
    [[nodiscard]] std::size_t offset_of(std::size_t position) const {
        position %= total;
        for (const range& r : ranges) {
            if (position < r.size) return r.offset + position;
            position -= r.size;
        }
        return 0;  // unreachable: position < total
    }
};

std::uint32_t call_add(const GuestContractInterface& iface, std::uint32_t a, std::uint32_t b) {
    if (iface.dispatch_type != DispatchType_Native || iface.dispatch.native.function_count < 1)
        fail("test.add has no native function");
    struct {
        std::uint32_t a, b;
    } args{a, b};
    std::uint32_t out = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(iface.dispatch.native.functions[0])({nullptr, add_id},
                                                                                 &args, &out, &err);
    if (err.code != AbiErrorCode_Ok) fail("test.add reported an error");
    return out;
}

/// The manifest's `name` as TOML reads it, even from a manifest polyplug refuses.
std::optional<std::string> name_in(std::string_view manifest) {
    try {
        const toml::table document = toml::parse(manifest);
        return document["name"].value<std::string>();
    } catch (const toml::parse_error&) {
        return std::nullopt;
    }
}

struct harness {
    std::string library;
    patchable patches;
    fs::path root, bundle, pristine;
    std::unique_ptr<polyplug::runtime> rt;
    std::uint64_t inputs = 0;

    harness() : library(read_file(POLYPLUG_FUZZ_FIXTURE)), patches(library) {
        std::string pattern = (fs::temp_directory_path() / "polyplug-bundle-fuzz-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
        root = pattern;
        bundle = root / "bundle";
        pristine = root / "pristine";
        fs::create_directories(bundle);
        fs::create_directories(pristine);
        replace_file(pristine / "manifest.toml", manifest_for("pristine", "libpristine.so"));
        replace_file(pristine / "libpristine.so", library);

        polyplug::runtime_options options;
        options.unload_grace_period = std::chrono::milliseconds(0);  // unmapped at each unload
        options.log = [](polyplug::log_level, std::string_view, std::string_view) {};
        rt = std::make_unique<polyplug::runtime>(options);
        check_pristine();
    }
    ~harness() {
        rt.reset();
        std::error_code ignored;
        fs::remove_all(root, ignored);
    }
    harness(const harness&) = delete;
    harness& operator=(const harness&) = delete;

    void expect_empty(const char* when) const {
        if (!rt->bundles().empty()) fail("bundles left behind", when);
        if (!rt->core().contracts().contracts().empty()) fail("contracts left behind", when);
    }

    /// The runtime still loads, dispatches and unloads an intact bundle.
    void check_pristine() {
        std::error_code ec;
        rt->load_bundle(pristine, ec);
        if (ec) fail("the pristine bundle no longer loads", rt->last_error());
        const GuestContractInterface* iface = rt->resolve(rt->find(add_id));
        if (iface == nullptr || call_add(*iface, 3, 4) != 7) fail("pristine test.add is wrong");
        rt->unload_bundle(polyplug::bundle_id("pristine"), ec);
        if (ec) fail("the pristine bundle does not unload", rt->last_error());
        expect_empty("after the pristine bundle");
    }

    void run(const std::uint8_t* data, std::size_t size) {
        std::size_t manifest_size = size >= 2 ? (data[0] | std::size_t{data[1]} << 8) : 0;
        std::size_t at = size >= 2 ? 2 : size;
        if (manifest_size > size - at) manifest_size = size - at;
        const std::string_view manifest(reinterpret_cast<const char*>(data + at), manifest_size);
        at += manifest_size;

        std::string lib = library;
        if (at < size) {
            const std::uint8_t flags = data[at++];
            std::uint32_t length = 0;
            for (int i = 0; i < 4 && at < size; ++i) length |= std::uint32_t{data[at++]} << (8 * i);
            for (; at + 3 <= size; at += 3) {
                const std::size_t position = data[at] | std::size_t{data[at + 1]} << 8;
                lib[patches.offset_of(position)] = static_cast<char>(data[at + 2]);
            }
            ElfW(Ehdr) eh, original;
            std::memcpy(&eh, lib.data(), sizeof eh);
            std::memcpy(&original, library.data(), sizeof original);
            if (eh.e_shoff == 0) {  // see the file comment: keep the section header table
                eh.e_shoff = original.e_shoff;
                std::memcpy(lib.data(), &eh, sizeof eh);
            }
            if ((flags & 1) != 0) lib.resize(length % (lib.size() + 1));
        }
        replace_file(bundle / "manifest.toml", manifest);
        replace_file(bundle / "libfuzz.so", lib);

        std::error_code ec;
        rt->load_bundle(bundle, ec);
        if (ec) {
            const std::string message = rt->last_error();
            if (message.empty()) fail("a refusal without a message");
            const std::optional<std::string> name = name_in(manifest);
            const bool named = name && message.find("'" + *name + "'") != std::string::npos;
            if (!named && message.find(bundle.string()) == std::string::npos)
                fail("a refusal naming neither the bundle nor its path", message);
            expect_empty("after a refusal");
        } else {
            const std::vector<polyplug::bundle_info> loaded = rt->bundles();
            if (loaded.size() != 1) fail("a load that did not add one bundle");
            if (const GuestContractInterface* iface = rt->resolve(rt->find(add_id)))
                if (call_add(*iface, 40, 2) != 42) fail("test.add computes a wrong sum");
            rt->unload_bundle(loaded[0].id, ec);
            if (ec) fail("a loaded bundle does not unload", rt->last_error());
            expect_empty("after an unload");
        }
        if (++inputs % 64 == 0) check_pristine();
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static harness h;  // one runtime for every input: loads and unloads are what is measured
    h.run(data, size);
    return 0;
}
