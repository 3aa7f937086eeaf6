// SPDX-License-Identifier: MIT
/// @file elf_check.cpp
/// Tests for detail/elf_check.hpp: the check a native library passes before dlopen maps it. Real
/// fixture libraries pass; truncated copies and copies with one corrupted header field are each
/// refused with their own message (dlopen would crash or misbehave on many of them); through a
/// runtime, a truncated library is refused on load and on reload and the runtime stays usable.
#include <polyplug/detail/elf_check.hpp>

#include "support.hpp"

#include <link.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>
#include <string>

using namespace test_support;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);
using Dyn = ElfW(Dyn);

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A library's bytes with typed access to its headers, for corrupting one field at a time.
class elf_bytes {
public:
    explicit elf_bytes(std::string bytes) : bytes_(std::move(bytes)) {}

    [[nodiscard]] const std::string& bytes() const { return bytes_; }
    [[nodiscard]] std::string& bytes() { return bytes_; }

    template <class T>
    [[nodiscard]] T get(std::size_t offset) const {
        REQUIRE(offset + sizeof(T) <= bytes_.size());
        T value;
        std::memcpy(&value, bytes_.data() + offset, sizeof(T));
        return value;
    }
    /// Applies `change` to the T at `offset`.
    template <class T>
    void edit(std::size_t offset, const std::function<void(T&)>& change) {
        T value = get<T>(offset);
        change(value);
        std::memcpy(bytes_.data() + offset, &value, sizeof(T));
    }

    [[nodiscard]] Ehdr header() const { return get<Ehdr>(0); }
    void edit_header(const std::function<void(Ehdr&)>& change) { edit<Ehdr>(0, change); }

    [[nodiscard]] std::size_t phdr_offset(std::size_t index) const {
        return header().e_phoff + index * sizeof(Phdr);
    }
    [[nodiscard]] Phdr phdr(std::size_t index) const { return get<Phdr>(phdr_offset(index)); }
    void edit_phdr(std::size_t index, const std::function<void(Phdr&)>& change) {
        edit<Phdr>(phdr_offset(index), change);
    }
    /// Index of the `nth` program header of `type` that `accept` takes.
    [[nodiscard]] std::size_t find_phdr(
        std::uint32_t type, const std::function<bool(const Phdr&)>& accept = nullptr) const {
        for (std::size_t i = 0; i < header().e_phnum; ++i) {
            const Phdr ph = phdr(i);
            if (ph.p_type == type && (!accept || accept(ph))) return i;
        }
        FAIL("no program header of type " << type);
        return 0;
    }

    /// File offsets of the dynamic section's entries, DT_NULL ones included.
    [[nodiscard]] std::vector<std::size_t> dyn_offsets() const {
        const Phdr dynamic = phdr(find_phdr(PT_DYNAMIC));
        std::vector<std::size_t> offsets;
        for (std::size_t at = 0; at + sizeof(Dyn) <= dynamic.p_filesz; at += sizeof(Dyn))
            offsets.push_back(dynamic.p_offset + at);
        return offsets;
    }
    /// File offset of the first dynamic entry with `tag`.
    [[nodiscard]] std::size_t dyn_offset(std::int64_t tag) const {
        for (const std::size_t at : dyn_offsets())
            if (get<Dyn>(at).d_tag == tag) return at;
        FAIL("no dynamic entry with tag " << tag);
        return 0;
    }
    [[nodiscard]] std::uint64_t dyn_value(std::int64_t tag) const {
        return get<Dyn>(dyn_offset(tag)).d_un.d_val;
    }
    void set_dyn_value(std::int64_t tag, std::uint64_t value) {
        edit<Dyn>(dyn_offset(tag), [&](Dyn& d) { d.d_un.d_val = value; });
    }
    /// Turns the entry with `tag` into a DT_DEBUG entry (which ld.so ignores in a library).
    void drop_dyn(std::int64_t tag) {
        edit<Dyn>(dyn_offset(tag), [](Dyn& d) { d.d_tag = DT_DEBUG; });
    }

private:
    std::string bytes_;
};

polyplug::status check_bytes(const temp_dir& dir, const std::string& bytes,
                             const std::string& name = "libcorrupt.so") {
    const fs::path file = dir.path() / name;
    write_file(file, bytes);
    return polyplug::detail::check_elf_library(file);
}

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

std::uint32_t add(const polyplug::runtime& rt, std::uint32_t a, std::uint32_t b) {
    const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
    REQUIRE(iface != nullptr);
    struct {
        std::uint32_t a, b;
    } args{a, b};
    std::uint32_t out = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[0])(
        {nullptr, add_id}, &args, &out, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return out;
}

/// Replaces `path` by `bytes` the way writers should: a temporary file renamed over it.
void replace_file(const fs::path& path, const std::string& bytes) {
    const fs::path staging = path.string() + ".staging";
    write_file(staging, bytes);
    fs::rename(staging, path);
}

}  // namespace

TEST_CASE("elf_check - every fixture library passes", "[elf_check]") {
    std::size_t checked = 0;
    for (const auto& entry : fs::directory_iterator(POLYPLUG_TEST_PLUGIN_DIR)) {
        if (entry.path().extension() != ".so") continue;
        INFO(entry.path());
        const polyplug::status st = polyplug::detail::check_elf_library(entry.path());
        CHECK(st.ok());
        CHECK(st.message().empty());
        ++checked;
    }
    CHECK(checked >= 6);
}

TEST_CASE("elf_check - a truncated library is refused at every length, and never crashes",
          "[elf_check]") {
    temp_dir dir;
    const std::string whole = read_bytes(fixture("adder"));
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n < whole.size(); n += 512) lengths.push_back(n);
    lengths.push_back(whole.size() - 1);
    for (const std::size_t n : {1, 3, 4, 16, 63, 64, 65}) lengths.push_back(n);

    for (const std::size_t n : lengths) {
        INFO("truncated to " << n << " of " << whole.size() << " bytes");
        const polyplug::status st = check_bytes(dir, whole.substr(0, n));
        REQUIRE_FALSE(st.ok());
        CHECK(st.code() == polyplug::errc::library_load_failed);
        CHECK_THAT(st.message(), StartsWith("'libcorrupt.so' is "));
        if (n == 0) {
            CHECK_THAT(st.message(), Contains("is empty (was it still being copied?)"));
        } else {
            CHECK_THAT(st.message(), Contains("is truncated: ") && Contains("needs bytes up to") &&
                                         Contains("the file has " + std::to_string(n)) &&
                                         Contains("(was it still being copied?)"));
        }
    }
    CHECK(check_bytes(dir, whole).ok());
}

TEST_CASE("elf_check - the example from the file comment: a half-copied library", "[elf_check]") {
    temp_dir dir;
    elf_bytes lib(read_bytes(fixture("adder")));
    // Cut inside the last loadable segment: its file range ends past the new end of file.
    std::size_t last_load = 0;
    for (std::size_t i = 0; i < lib.header().e_phnum; ++i)
        if (lib.phdr(i).p_type == PT_LOAD) last_load = i;
    const Phdr ph = lib.phdr(last_load);
    const std::size_t cut = ph.p_offset + ph.p_filesz / 2;
    const polyplug::status st = check_bytes(dir, lib.bytes().substr(0, cut), "libx.so");
    CHECK(st.message() == "'libx.so' is truncated: segment " + std::to_string(last_load) +
                              " needs bytes up to " + std::to_string(ph.p_offset + ph.p_filesz) +
                              ", the file has " + std::to_string(cut) +
                              " (was it still being copied?)");
}

TEST_CASE("elf_check - each corruption of a header gets its own message", "[elf_check]") {
    temp_dir dir;
    const elf_bytes intact(read_bytes(fixture("adder")));
    REQUIRE(check_bytes(dir, intact.bytes()).ok());
    elf_bytes lib = intact;
    const std::size_t size = lib.bytes().size();
    std::string needle;

    // ---- the ELF header
    SECTION("bad magic") {
        lib.bytes()[1] = 'X';
        needle = "is not an ELF file (it does not start with the ELF magic";
    }
    SECTION("not ELF at all") {
        lib.bytes() = "this is not a shared object at all";
        needle = "is not an ELF file";
    }
    SECTION("the other ELF class") {
        lib.edit_header([](Ehdr& h) {
            h.e_ident[EI_CLASS] = h.e_ident[EI_CLASS] == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64;
        });
        needle = sizeof(void*) == 8 ? "is a 32-bit library; this process is 64-bit"
                                    : "is a 64-bit library; this process is 32-bit";
    }
    SECTION("the other byte order") {
        lib.edit_header([](Ehdr& h) {
            h.e_ident[EI_DATA] = h.e_ident[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
        });
        needle = "-endian; this process is";
    }
    SECTION("an unknown ELF version") {
        lib.edit_header([](Ehdr& h) { h.e_version = 2; });
        needle = "has a corrupt ELF header: e_version is 2, expected 1";
    }
    SECTION("an executable") {
        lib.edit_header([](Ehdr& h) { h.e_type = ET_EXEC; });
        needle = "is not a shared library: it is an executable (ET_EXEC)";
    }
    SECTION("an object file") {
        lib.edit_header([](Ehdr& h) { h.e_type = ET_REL; });
        needle = "is not a shared library: it is a relocatable object file";
    }
    SECTION("another machine") {
        lib.edit_header(
            [](Ehdr& h) { h.e_machine = h.e_machine == EM_X86_64 ? EM_AARCH64 : EM_X86_64; });
        needle = "is built for ";
    }
    SECTION("a wrong program header entry size") {
        lib.edit_header([](Ehdr& h) { h.e_phentsize = 32; });
        needle = "has a corrupt ELF header: program header entries are 32 bytes, expected " +
                 std::to_string(sizeof(Phdr));
    }
    SECTION("the program header table outside the file") {
        lib.edit_header([&](Ehdr& h) { h.e_phoff = size + 4096; });
        needle = "the program header table at offset " + std::to_string(size + 4096) +
                 " lies outside the file (" + std::to_string(size) + " bytes)";
    }
    SECTION("the program header table running past the end") {
        lib.edit_header([&](Ehdr& h) { h.e_phoff = size - 8; });
        needle = "is truncated: the program header table needs bytes up to";
    }
    SECTION("no program headers") {
        lib.edit_header([](Ehdr& h) { h.e_phnum = 0; });
        needle = "no program headers (e_phnum is 0)";
    }
    SECTION("extended program header numbering") {
        lib.edit_header([](Ehdr& h) { h.e_phnum = PN_XNUM; });
        needle = "extended program header numbering (PN_XNUM) is not supported";
    }
    SECTION("implausibly many program headers") {
        lib.edit_header([](Ehdr& h) { h.e_phnum = 5000; });
        needle = "5000 program headers, more than the 1024";
    }
    SECTION("the section header table past the end") {
        lib.edit_header([&](Ehdr& h) { h.e_shoff = size - 10; });
        needle = "is truncated: the section header table needs bytes up to";
    }

    // ---- program headers
    SECTION("a segment past the end of the file") {
        const std::size_t i = lib.find_phdr(PT_LOAD);
        REQUIRE(lib.phdr(i).p_offset == 0);  // so the whole file fits, one more byte does not
        lib.edit_phdr(i, [&](Phdr& p) { p.p_filesz = p.p_memsz = size + 1; });
        needle = "is truncated: segment " + std::to_string(i) + " needs bytes up to " +
                 std::to_string(size + 1) + ", the file has " + std::to_string(size);
    }
    SECTION("a segment whose file range overflows") {
        const std::size_t i = lib.find_phdr(PT_LOAD);
        lib.edit_phdr(i, [](Phdr& p) {
            p.p_offset = 0x1000;
            p.p_filesz = p.p_memsz = ~std::uint64_t{0} - 0x10;
        });
        needle = "segment " + std::to_string(i) + " has a file range that overflows";
    }
    SECTION("more file bytes than memory bytes") {
        const std::size_t i = lib.find_phdr(PT_LOAD);
        lib.edit_phdr(i, [](Phdr& p) { p.p_memsz = p.p_filesz - 1; });
        needle = "segment " + std::to_string(i) + " has more file bytes";
    }
    SECTION("an alignment that is not a power of two") {
        const std::size_t i = lib.find_phdr(PT_LOAD);
        lib.edit_phdr(i, [](Phdr& p) { p.p_align = 0x1800; });
        needle = "segment " + std::to_string(i) + " has an alignment (0x1800)";
    }
    SECTION("a file offset that disagrees with the address") {
        const std::size_t i = lib.find_phdr(PT_LOAD, [](const Phdr& p) { return p.p_offset != 0; });
        lib.edit_phdr(i, [](Phdr& p) { p.p_offset += 8; });
        needle = "that disagree modulo its alignment";
    }
    SECTION("loadable segments out of order") {
        const std::size_t first = lib.find_phdr(PT_LOAD);
        const std::size_t second = lib.find_phdr(
            PT_LOAD, [&](const Phdr& p) { return p.p_vaddr != lib.phdr(first).p_vaddr; });
        const Phdr a = lib.phdr(first), b = lib.phdr(second);
        lib.edit_phdr(first, [&](Phdr& p) { p = b; });
        lib.edit_phdr(second, [&](Phdr& p) { p = a; });
        needle = "segment " + std::to_string(second) + " (address " +
                 polyplug::detail::elf_check_impl::hex(a.p_vaddr) + ") overlaps or precedes";
    }
    SECTION("no loadable segment") {
        for (std::size_t i = 0; i < lib.header().e_phnum; ++i)
            if (lib.phdr(i).p_type == PT_LOAD)
                lib.edit_phdr(i, [](Phdr& p) { p.p_type = PT_NULL; });
        needle = "has no loadable segment (PT_LOAD)";
    }
    SECTION("no PT_DYNAMIC") {
        lib.edit_phdr(lib.find_phdr(PT_DYNAMIC), [](Phdr& p) { p.p_type = PT_NULL; });
        needle = "has no dynamic section (PT_DYNAMIC): it is not a shared library";
    }
    SECTION("two PT_DYNAMIC") {
        lib.edit_phdr(lib.find_phdr(PT_GNU_STACK),
                      [&](Phdr& p) { p = lib.phdr(lib.find_phdr(PT_DYNAMIC)); });
        needle = "has 2 dynamic sections (PT_DYNAMIC)";
    }
    SECTION("PT_DYNAMIC outside every segment") {
        const std::size_t i = lib.find_phdr(PT_DYNAMIC);
        lib.edit_phdr(i, [](Phdr& p) { p.p_vaddr = 0x7000000; });
        needle = "segment " + std::to_string(i) + " (the dynamic section, address 0x7000000, " +
                 std::to_string(lib.phdr(i).p_filesz) +
                 " bytes) is not inside the file-backed part of a loadable segment";
    }
    SECTION("PT_DYNAMIC at a file offset its segment does not map there") {
        lib.edit_phdr(lib.find_phdr(PT_DYNAMIC), [](Phdr& p) { p.p_offset -= 16; });
        needle = "(the dynamic section) says file offset";
    }
    SECTION("thread-local storage outside the file") {
        lib.edit_phdr(lib.find_phdr(PT_GNU_STACK), [](Phdr& p) {
            p.p_type = PT_TLS;
            p.p_vaddr = 0x7000000;
            p.p_filesz = p.p_memsz = 64;
        });
        needle = "(thread-local storage, address 0x7000000, 64 bytes) is not inside";
    }
    SECTION("PT_GNU_RELRO outside the segments") {
        lib.edit_phdr(lib.find_phdr(PT_GNU_STACK), [](Phdr& p) {
            p.p_type = PT_GNU_RELRO;
            p.p_vaddr = 0x7000000;
            p.p_memsz = 0x1000;
        });
        needle = "(read-only after relocation, address 0x7000000, 4096 bytes) is not inside one";
    }
    SECTION("a segment moved onto other bytes of the file") {
        const std::size_t i =
            lib.find_phdr(PT_LOAD, [](const Phdr& p) { return (p.p_flags & PF_X) != 0; });
        lib.edit_phdr(i, [&](Phdr& p) {
            p.p_offset += p.p_align;
            REQUIRE(p.p_offset + p.p_filesz <= size);
        });
        needle = "does not match its section headers: section ";
    }
    SECTION("writable data in a read-only segment") {
        const std::size_t i =
            lib.find_phdr(PT_LOAD, [](const Phdr& p) { return (p.p_flags & PF_W) != 0; });
        lib.edit_phdr(i, [](Phdr& p) { p.p_flags &= ~std::uint32_t{PF_W}; });
        needle = "is writable, but segment " + std::to_string(i) + " that maps it is not";
    }
    SECTION("code in a segment that is not executable") {
        const std::size_t i =
            lib.find_phdr(PT_LOAD, [](const Phdr& p) { return (p.p_flags & PF_X) != 0; });
        lib.edit_phdr(i, [](Phdr& p) { p.p_flags &= ~std::uint32_t{PF_X}; });
        needle = "is code, but segment " + std::to_string(i) + " that maps it is not executable";
    }

    SECTION("a data segment that is not readable") {
        const std::size_t i = lib.find_phdr(PT_LOAD, [](const Phdr& p) {
            return (p.p_flags & (PF_W | PF_X)) == 0 && p.p_offset != 0;
        });
        lib.edit_phdr(i, [](Phdr& p) { p.p_flags = 0; });
        needle = "is data, but segment " + std::to_string(i) + " that maps it is not readable";
    }
    SECTION("file bytes over .bss") {
        const std::size_t i =
            lib.find_phdr(PT_LOAD, [](const Phdr& p) { return p.p_memsz > p.p_filesz + 0x40; });
        lib.edit_phdr(i, [&](Phdr& p) {
            p.p_filesz = p.p_memsz;
            REQUIRE(p.p_offset + p.p_filesz <= size);
        });
        needle = "lies in the file-backed part of segment " + std::to_string(i) +
                 ", so it would not start zeroed";
    }
    SECTION("PT_GNU_RELRO over code") {
        const Phdr code =
            lib.phdr(lib.find_phdr(PT_LOAD, [](const Phdr& p) { return (p.p_flags & PF_X) != 0; }));
        lib.edit_phdr(lib.find_phdr(PT_GNU_RELRO), [&](Phdr& p) {
            p.p_vaddr = code.p_vaddr;
            p.p_memsz = code.p_memsz;
        });
        needle = "(read-only after relocation) lies in segment ";
    }
    SECTION("PT_GNU_RELRO grown over .bss") {
        lib.edit_phdr(lib.find_phdr(PT_GNU_RELRO), [](Phdr& p) { p.p_memsz += 0x1000; });
        needle = "would make writable section ";
    }
    SECTION("PT_NOTE moved onto other bytes") {
        lib.edit_phdr(lib.find_phdr(PT_NOTE), [](Phdr& p) {
            p.p_offset += 0x40;
            p.p_vaddr += 0x40;
        });
        needle = "(notes, address ";
    }

    // ---- the dynamic section
    SECTION("DT_STRTAB pointing outside the file") {
        lib.set_dyn_value(DT_STRTAB, 0x7000000);
        needle = "has a corrupt dynamic section: DT_STRTAB points to 0x7000000 (" +
                 std::to_string(lib.dyn_value(DT_STRSZ)) +
                 " bytes), outside the file-backed part of every loadable segment";
    }
    SECTION("DT_STRTAB pointing at code") {
        lib.set_dyn_value(DT_STRTAB, lib.dyn_value(DT_INIT));
        needle = "which is not a string table section of this file's section headers";
    }
    SECTION("DT_SYMTAB pointing into the zero-filled part of a segment") {
        const Phdr rw = lib.phdr(lib.find_phdr(PT_LOAD, [](const Phdr& p) {
            return p.p_memsz >= p.p_filesz + 64 && (p.p_flags & PF_W) != 0;
        }));
        lib.set_dyn_value(DT_SYMTAB, (rw.p_vaddr + rw.p_filesz + 16) & ~std::uint64_t{7});
        needle = "DT_SYMTAB points to ";
    }
    SECTION("DT_INIT pointing at data") {
        lib.set_dyn_value(DT_INIT, lib.dyn_value(DT_STRTAB));
        needle =
            "DT_INIT points to " + polyplug::detail::elf_check_impl::hex(lib.dyn_value(DT_STRTAB));
    }
    SECTION("DT_INIT moved inside the code") {
        lib.set_dyn_value(DT_INIT, lib.dyn_value(DT_INIT) + 0x20);
        needle = "DT_INIT points to " +
                 polyplug::detail::elf_check_impl::hex(lib.dyn_value(DT_INIT)) +
                 ", which is not a function of this file's symbol table";
    }
    SECTION("DT_INIT_ARRAYSZ reaching into the next section") {
        lib.set_dyn_value(DT_INIT_ARRAYSZ, 0x208);
        needle = "DT_INIT_ARRAY points to " +
                 polyplug::detail::elf_check_impl::hex(lib.dyn_value(DT_INIT_ARRAY)) +
                 " (520 bytes), which is not a function pointer array section";
    }
    SECTION("a relocation tag corrupted into an unknown one") {
        lib.edit<Dyn>(lib.dyn_offset(DT_RELA), [](Dyn& d) { d.d_tag = 0x27; });
        needle = "(the relocation section at " + polyplug::detail::elf_check_impl::hex(
                                                     lib.get<Dyn>(lib.dyn_offset(0x27)).d_un.d_val);
    }
    SECTION("a DT_NULL too early: the version tables are lost") {
        const std::size_t at = std::min(lib.dyn_offset(DT_VERSYM), lib.dyn_offset(DT_VERNEED));
        lib.edit<Dyn>(at, [](Dyn& d) { d = Dyn{}; });
        needle = "(the symbol version section at ";
    }
    SECTION("DT_RELACOUNT counting relocations that are not relative") {
        lib.set_dyn_value(DT_RELACOUNT, lib.dyn_value(DT_RELASZ) / sizeof(ElfW(Rela)));
        needle = "DT_RELACOUNT says the first " +
                 std::to_string(lib.dyn_value(DT_RELASZ) / sizeof(ElfW(Rela))) +
                 " relocations are relative, but relocation ";
    }
    SECTION("a misaligned table") {
        lib.set_dyn_value(DT_RELA, lib.dyn_value(DT_RELA) + 1);
        needle = "DT_RELA points to ";
        needle += polyplug::detail::elf_check_impl::hex(lib.dyn_value(DT_RELA));
        needle += ", not aligned to";
    }
    SECTION("no DT_NULL") {
        for (const std::size_t at : lib.dyn_offsets())
            lib.edit<Dyn>(at, [](Dyn& d) {
                if (d.d_tag == DT_NULL) d.d_tag = DT_DEBUG;
            });
        needle = "has a corrupt dynamic section: no DT_NULL entry ends it within its " +
                 std::to_string(lib.phdr(lib.find_phdr(PT_DYNAMIC)).p_filesz) + " bytes";
    }
    SECTION("DT_NEEDED past the string table") {
        const std::uint64_t strsz = lib.dyn_value(DT_STRSZ);
        lib.set_dyn_value(DT_NEEDED, strsz + 100);
        needle = "DT_NEEDED names string offset " +
                 polyplug::detail::elf_check_impl::hex(strsz + 100) +
                 ", past the end of the string table (DT_STRSZ " + std::to_string(strsz) + ")";
    }
    SECTION("a string table whose last string is cut") {
        lib.set_dyn_value(DT_STRSZ, lib.dyn_value(DT_STRSZ) - 1);
        needle = "does not end with a NUL byte";
    }
    SECTION("a string table larger than its section") {
        lib.set_dyn_value(DT_STRSZ, lib.dyn_value(DT_STRSZ) + 64);
        needle = "which is not a string table section";
    }
    SECTION("no DT_SYMTAB") {
        lib.drop_dyn(DT_SYMTAB);
        needle = "is present without DT_SYMTAB";
    }
    SECTION("DT_RELA without DT_RELASZ") {
        lib.drop_dyn(DT_RELASZ);
        needle = "DT_RELA is present without DT_RELASZ";
    }
    SECTION("DT_RELA without DT_RELAENT") {
        lib.drop_dyn(DT_RELAENT);
        needle = "DT_RELA is present without DT_RELAENT";
    }
    SECTION("a wrong DT_RELAENT") {
        lib.set_dyn_value(DT_RELAENT, 16);
        needle = "DT_RELAENT is 16, expected " + std::to_string(sizeof(ElfW(Rela)));
    }
    SECTION("a DT_PLTREL ld.so would assert on") {
        lib.set_dyn_value(DT_PLTREL, 0);
        needle = "DT_PLTREL is 0, expected";
    }
    SECTION("DT_JMPREL without DT_PLTRELSZ") {
        lib.drop_dyn(DT_PLTRELSZ);
        needle = "DT_JMPREL is present without DT_PLTRELSZ";
    }
    SECTION("DT_INIT_ARRAY without its size") {
        lib.drop_dyn(DT_INIT_ARRAYSZ);
        needle = "DT_INIT_ARRAY is present without DT_INIT_ARRAYSZ";
    }
    SECTION("DT_FINI_ARRAYSZ not a multiple of a pointer") {
        lib.set_dyn_value(DT_FINI_ARRAYSZ, lib.dyn_value(DT_FINI_ARRAYSZ) + 1);
        needle = "DT_FINI_ARRAYSZ (" + std::to_string(lib.dyn_value(DT_FINI_ARRAYSZ)) +
                 ") is not a multiple of " + std::to_string(sizeof(void*));
    }
    SECTION("DT_RELACOUNT beyond the table") {
        lib.set_dyn_value(DT_RELACOUNT, 100000);
        needle = "DT_RELACOUNT (100000) counts more relocations than DT_RELASZ holds";
    }
    SECTION("a table tag twice") {
        lib.edit<Dyn>(lib.dyn_offset(DT_SYMENT), [](Dyn& d) { d.d_tag = DT_STRTAB; });
        needle = "DT_STRTAB appears 2 times";
    }

    const polyplug::status st = check_bytes(dir, lib.bytes());
    INFO(st.message());
    CHECK(st.code() == polyplug::errc::library_load_failed);
    CHECK_THAT(st.message(), StartsWith("'libcorrupt.so' "));
    CHECK_THAT(st.message(), Contains(needle));
}

TEST_CASE("elf_check - files that are not libraries", "[elf_check]") {
    temp_dir dir;
    SECTION("missing") {
        const polyplug::status st = polyplug::detail::check_elf_library(dir.path() / "nope.so");
        CHECK(st.code() == polyplug::errc::library_load_failed);
        CHECK_THAT(st.message(), Contains("'nope.so' cannot be opened: "));
    }
    SECTION("a directory") {
        fs::create_directories(dir.path() / "lib.so");
        const polyplug::status st = polyplug::detail::check_elf_library(dir.path() / "lib.so");
        CHECK_THAT(st.message(), Contains("'lib.so' is not a regular file"));
    }
    SECTION("a FIFO: refused at once instead of waiting for a writer") {
        const fs::path fifo = dir.path() / "fifo.so";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        const polyplug::status st = polyplug::detail::check_elf_library(fifo);
        CHECK_THAT(st.message(), Contains("'fifo.so' is not a regular file"));
    }
}

TEST_CASE("elf_check - through a runtime: a truncated library is refused, the runtime stays usable",
          "[elf_check]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.unload_grace_period = std::chrono::milliseconds(0);
    polyplug::runtime rt(options);
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path library = bundle / "libadder.so";
    const std::string whole = read_bytes(library);
    replace_file(library, whole.substr(0, 8000));

    std::error_code ec;
    rt.load_bundle(bundle, ec);
    CHECK(ec == polyplug::errc::library_load_failed);
    const std::string message = rt.last_error();
    CHECK_THAT(message, StartsWith("bundle 'adder': cannot load '" + library.string() +
                                   "': 'libadder.so' is truncated: "));
    CHECK_THAT(message, Contains("the file has 8000 (was it still being copied?)"));
    CHECK(rt.bundles().empty());
    CHECK(rt.core().contracts().contracts().empty());
    CHECK(rt.loader<polyplug::native_loader>().open_libraries() == 0);

    // The copy completes: the same bundle loads and works.
    replace_file(library, whole);
    rt.load_bundle(bundle);
    CHECK(add(rt, 3, 4) == 7);

    SECTION("a reload onto a half-copied library is refused; the loaded version keeps working") {
        replace_file(library, whole.substr(0, whole.size() / 2));
        rt.reload_bundle(bundle, ec);
        CHECK(ec == polyplug::errc::library_load_failed);
        CHECK_THAT(rt.last_error(), Contains("is truncated: "));
        CHECK(rt.bundles().size() == 1);
        CHECK(add(rt, 5, 6) == 11);

        replace_file(library, whole);
        rt.reload_bundle(bundle);
        CHECK(add(rt, 1, 2) == 3);
    }
    SECTION("unloaded and loaded again") {
        rt.unload_bundle(polyplug::bundle_id("adder"));
        CHECK(rt.bundles().empty());
        rt.load_bundle(bundle);
        CHECK(add(rt, 2, 2) == 4);
    }
}
