// SPDX-License-Identifier: MIT
/// @file detail/elf_check.hpp
/// A bounded check of a native library's ELF headers, run before dlopen maps it, so that a
/// truncated or corrupt file is refused with a message instead of crashing the host.
///
/// Why: glibc's ld.so trusts the file. It mmaps every PT_LOAD segment as its program header
/// describes it and then touches the pages (it reads the dynamic section, zeroes the tail of the
/// last file page, applies relocations). A segment that extends past the end of the file maps
/// pages with nothing behind them, and touching one raises SIGBUS: a half-copied library kills
/// the host inside dlopen. Likewise it dereferences the addresses in the dynamic section
/// (DT_STRTAB, DT_SYMTAB, the relocation tables, ...) with no bounds check, and asserts on some
/// of its values (an assertion in ld.so ends the process).
///
/// What is checked, reading only bounded ranges of the file and trusting no offset:
/// - the ELF header: magic, class, byte order, version, ET_DYN, this process's machine, entry
///   sizes, a plausible number of program headers, their table inside the file;
/// - every PT_LOAD inside the file, with sane sizes and alignment, in ascending address order;
///   every other segment ld.so or the unwinder reads (PT_DYNAMIC, PT_TLS, PT_NOTE,
///   PT_GNU_PROPERTY, PT_GNU_EH_FRAME, PT_PHDR) inside the file-backed part of a PT_LOAD, and
///   PT_GNU_RELRO inside a writable one;
/// - the dynamic section ended by DT_NULL; each table it points at inside the file-backed part of
///   a readable PT_LOAD, aligned, with the size and entry-size tags ld.so reads beside it and
///   values it would assert on or trust (DT_PLTREL, DT_RELACOUNT); its string offsets inside a
///   NUL-terminated string table.
/// When the file has section headers (every linker writes them; `sstrip` removes them), they
/// are the independent description of the layout the headers are checked against: the table
/// must be inside the file (it is written last, so this also shows a copy that stopped after
/// the segments); every allocated section must be mapped from its own file offset by a segment
/// with its permissions, .bss only where ld.so zeroes; PT_GNU_RELRO must not make a .bss
/// read-only; each table of the dynamic section must be the section of its type, and each such
/// section must be named by the dynamic section. A corrupt program header or dynamic entry that
/// moves, resizes or drops a table is caught that way.
///
/// Limits: the contents of the tables (relocations, symbols, hash chains, versions) and the code
/// are trusted: loading native code runs it, and a check cannot tell wrong code from right. So
/// DT_INIT and DT_FINI are checked to be in the code (in an unstripped library: a function of its
/// symbol table), not to be the right function; and a PT_GNU_RELRO grown over initialised data
/// alone is not seen. A library without section headers is checked against its program headers
/// only. The file is checked, then dlopen opens it by name again: a file changed in between is
/// not covered. Hot reload loads from its own private copy; whoever writes libraries into a
/// watched directory should write a temporary file and rename it over the old one, so that no
/// reader ever sees half a file.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/error.hpp>

#include <filesystem>
#include <string>

// The check knows ELF only; elsewhere (no <elf.h>) every file passes to the platform's loader.
#if defined(__ELF__) && __has_include(<elf.h>)
#define POLYPLUG_DETAIL_ELF_CHECK 1
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>
#endif

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

#if defined(POLYPLUG_DETAIL_ELF_CHECK)

namespace elf_check_impl {

// The ELF flavour of this process: a library of another class cannot be loaded into it.
inline constexpr bool is64 = sizeof(void*) == 8;
using ehdr_t = std::conditional_t<is64, Elf64_Ehdr, Elf32_Ehdr>;
using phdr_t = std::conditional_t<is64, Elf64_Phdr, Elf32_Phdr>;
using shdr_t = std::conditional_t<is64, Elf64_Shdr, Elf32_Shdr>;
using dyn_t = std::conditional_t<is64, Elf64_Dyn, Elf32_Dyn>;
using sym_t = std::conditional_t<is64, Elf64_Sym, Elf32_Sym>;
using rela_t = std::conditional_t<is64, Elf64_Rela, Elf32_Rela>;
using rel_t = std::conditional_t<is64, Elf64_Rel, Elf32_Rel>;
using verdef_t = std::conditional_t<is64, Elf64_Verdef, Elf32_Verdef>;
using verneed_t = std::conditional_t<is64, Elf64_Verneed, Elf32_Verneed>;
inline constexpr unsigned char native_class = is64 ? ELFCLASS64 : ELFCLASS32;
inline constexpr unsigned char native_data =
    std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;
inline constexpr std::uint64_t word = sizeof(void*);

// The machine this process runs on; 0 (EM_NONE) where we do not know it: no machine check then.
// `native_plt_rel`: the relocation kind ld.so of that machine processes (it asserts on
// DT_PLTREL).
// `native_relative`: its R_*_RELATIVE relocation type (0: unknown, not checked).
#if defined(__x86_64__)
inline constexpr std::uint16_t native_machine = EM_X86_64;
inline constexpr int native_plt_rel = DT_RELA;
inline constexpr std::uint32_t native_relative = R_X86_64_RELATIVE;
#elif defined(__aarch64__)
inline constexpr std::uint16_t native_machine = EM_AARCH64;
inline constexpr int native_plt_rel = DT_RELA;
inline constexpr std::uint32_t native_relative = R_AARCH64_RELATIVE;
#elif defined(__i386__)
inline constexpr std::uint16_t native_machine = EM_386;
inline constexpr int native_plt_rel = DT_REL;
inline constexpr std::uint32_t native_relative = R_386_RELATIVE;
#elif defined(__arm__)
inline constexpr std::uint16_t native_machine = EM_ARM;
inline constexpr int native_plt_rel = DT_REL;
inline constexpr std::uint32_t native_relative = R_ARM_RELATIVE;
#elif defined(__riscv)
inline constexpr std::uint16_t native_machine = EM_RISCV;
inline constexpr int native_plt_rel = DT_RELA;
inline constexpr std::uint32_t native_relative = R_RISCV_RELATIVE;
#else
inline constexpr std::uint16_t native_machine = EM_NONE;
inline constexpr int native_plt_rel = DT_NULL;  // either kind
inline constexpr std::uint32_t native_relative = 0;
#endif

// Older <elf.h> lack these (RELR came with glibc 2.36); the values are the gABI's.
inline constexpr std::int64_t dt_relrsz = 35;
inline constexpr std::int64_t dt_relr = 36;
inline constexpr std::int64_t dt_relrent = 37;
inline constexpr std::uint32_t sht_relr = 19;
inline constexpr std::uint32_t pt_gnu_property = 0x6474e553;  // glibc 2.32

// ld.so reads a larger program header table with alloca: bound it well below any thread stack.
inline constexpr std::uint64_t max_program_headers = 1024;
inline constexpr std::uint64_t max_dynamic_entries = 1u << 16;
inline constexpr std::uint64_t max_sections = 1u << 16;
// ld.so copies a PT_NOTE that lies outside its first read onto the stack (alloca).
inline constexpr std::uint64_t max_note_bytes = 1u << 20;

inline std::string hex(std::uint64_t value) {
    char buf[2 + 16];
    buf[0] = '0';
    buf[1] = 'x';
    const auto end = std::to_chars(buf + 2, buf + sizeof buf, value, 16).ptr;
    return std::string(buf, end);
}
inline std::string dec(std::uint64_t value) {
    return std::to_string(value);
}

// a + b, or nothing when it does not fit in 64 bits.
inline std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b) {
    if (b > UINT64_MAX - a) return std::nullopt;
    return a + b;
}

inline bool is_pow2(std::uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

inline std::string machine_name(std::uint16_t machine) {
    switch (machine) {
        case EM_X86_64:
            return "x86-64";
        case EM_AARCH64:
            return "AArch64";
        case EM_386:
            return "i386";
        case EM_ARM:
            return "32-bit ARM";
        case EM_RISCV:
            return "RISC-V";
        case EM_PPC64:
            return "PowerPC64";
        case EM_S390:
            return "s390";
        default:
            return "machine " + dec(machine);
    }
}

inline std::string type_name(std::uint16_t type) {
    switch (type) {
        case ET_NONE:
            return "no type (ET_NONE)";
        case ET_REL:
            return "a relocatable object file (ET_REL, not linked yet)";
        case ET_EXEC:
            return "an executable (ET_EXEC)";
        case ET_CORE:
            return "a core dump (ET_CORE)";
        default:
            return "type " + hex(type);
    }
}

inline const char* tag_name(std::int64_t tag) {
    switch (tag) {
        case DT_NEEDED:
            return "DT_NEEDED";
        case DT_PLTRELSZ:
            return "DT_PLTRELSZ";
        case DT_PLTGOT:
            return "DT_PLTGOT";
        case DT_HASH:
            return "DT_HASH";
        case DT_STRTAB:
            return "DT_STRTAB";
        case DT_SYMTAB:
            return "DT_SYMTAB";
        case DT_RELA:
            return "DT_RELA";
        case DT_RELASZ:
            return "DT_RELASZ";
        case DT_RELAENT:
            return "DT_RELAENT";
        case DT_STRSZ:
            return "DT_STRSZ";
        case DT_INIT:
            return "DT_INIT";
        case DT_FINI:
            return "DT_FINI";
        case DT_SONAME:
            return "DT_SONAME";
        case DT_RPATH:
            return "DT_RPATH";
        case DT_REL:
            return "DT_REL";
        case DT_RELSZ:
            return "DT_RELSZ";
        case DT_RELENT:
            return "DT_RELENT";
        case DT_PLTREL:
            return "DT_PLTREL";
        case DT_JMPREL:
            return "DT_JMPREL";
        case DT_INIT_ARRAY:
            return "DT_INIT_ARRAY";
        case DT_FINI_ARRAY:
            return "DT_FINI_ARRAY";
        case DT_INIT_ARRAYSZ:
            return "DT_INIT_ARRAYSZ";
        case DT_FINI_ARRAYSZ:
            return "DT_FINI_ARRAYSZ";
        case DT_RUNPATH:
            return "DT_RUNPATH";
        case DT_PREINIT_ARRAY:
            return "DT_PREINIT_ARRAY";
        case DT_PREINIT_ARRAYSZ:
            return "DT_PREINIT_ARRAYSZ";
        case dt_relrsz:
            return "DT_RELRSZ";
        case dt_relr:
            return "DT_RELR";
        case dt_relrent:
            return "DT_RELRENT";
        case DT_GNU_HASH:
            return "DT_GNU_HASH";
        case DT_VERSYM:
            return "DT_VERSYM";
        case DT_RELACOUNT:
            return "DT_RELACOUNT";
        case DT_RELCOUNT:
            return "DT_RELCOUNT";
        case DT_VERDEF:
            return "DT_VERDEF";
        case DT_VERNEED:
            return "DT_VERNEED";
        case DT_AUXILIARY:
            return "DT_AUXILIARY";
        case DT_FILTER:
            return "DT_FILTER";
        default:
            return "a dynamic tag";
    }
}

/// A table the dynamic section points at and ld.so dereferences.
struct table_rule {
    std::int64_t tag;
    std::int64_t size_tag;           ///< DT_NULL: the table has no size tag
    std::uint64_t min_bytes;         ///< what ld.so reads at least (tables without a size tag)
    std::uint64_t align;             ///< of the address
    std::uint32_t section_types[2];  ///< the section it must be, when there are section headers
    bool code;                       ///< an address inside an executable section instead
};

inline constexpr table_rule table_rules[] = {
    {DT_STRTAB, DT_STRSZ, 1, 1, {SHT_STRTAB, SHT_STRTAB}, false},
    {DT_SYMTAB, DT_NULL, sizeof(sym_t), alignof(sym_t), {SHT_DYNSYM, SHT_SYMTAB}, false},
    {DT_HASH, DT_NULL, 8, 4, {SHT_HASH, SHT_HASH}, false},
    {DT_GNU_HASH, DT_NULL, 16, word, {SHT_GNU_HASH, SHT_GNU_HASH}, false},
    {DT_RELA, DT_RELASZ, 0, alignof(rela_t), {SHT_RELA, SHT_RELA}, false},
    {DT_REL, DT_RELSZ, 0, alignof(rel_t), {SHT_REL, SHT_REL}, false},
    {DT_JMPREL, DT_PLTRELSZ, 0, word, {SHT_RELA, SHT_REL}, false},
    {dt_relr, dt_relrsz, 0, word, {sht_relr, sht_relr}, false},
    {DT_INIT_ARRAY, DT_INIT_ARRAYSZ, 0, word, {SHT_INIT_ARRAY, SHT_PROGBITS}, false},
    {DT_FINI_ARRAY, DT_FINI_ARRAYSZ, 0, word, {SHT_FINI_ARRAY, SHT_PROGBITS}, false},
    {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, 0, word, {SHT_PREINIT_ARRAY, SHT_PROGBITS}, false},
    {DT_VERSYM, DT_NULL, 2, 2, {SHT_GNU_versym, SHT_GNU_versym}, false},
    {DT_VERDEF, DT_NULL, sizeof(verdef_t), 4, {SHT_GNU_verdef, SHT_GNU_verdef}, false},
    {DT_VERNEED, DT_NULL, sizeof(verneed_t), 4, {SHT_GNU_verneed, SHT_GNU_verneed}, false},
    {DT_INIT, DT_NULL, 1, 1, {SHT_NULL, SHT_NULL}, true},
    {DT_FINI, DT_NULL, 1, 1, {SHT_NULL, SHT_NULL}, true},
    {DT_PLTGOT, DT_NULL, word, word, {SHT_NULL, SHT_NULL}, false},
};

// Tags whose value is an offset into the string table (ld.so reads each as a C string).
inline constexpr std::int64_t string_tags[] = {DT_NEEDED,  DT_SONAME,    DT_RPATH,
                                               DT_RUNPATH, DT_AUXILIARY, DT_FILTER};

// Size and count tags that must appear at most once (the tables' address tags too).
inline constexpr std::int64_t single_tags[] = {
    DT_STRSZ,        DT_RELASZ,          DT_RELAENT,   DT_RELSZ,    DT_RELENT,
    DT_PLTRELSZ,     DT_PLTREL,          DT_RELACOUNT, DT_RELCOUNT, DT_INIT_ARRAYSZ,
    DT_FINI_ARRAYSZ, DT_PREINIT_ARRAYSZ, dt_relrsz,    dt_relrent};

/// Reads exact byte ranges of an open file, never outside [0, size). The first and last few
/// KiB are read once up front: they hold the ELF header and program headers, and the section
/// headers with their names, so a check takes a handful of system calls (it runs on every load).
class file_reader {
public:
    file_reader(int fd, std::uint64_t size) : fd_(fd), size_(size) {
        head_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size, 4096)));
        if (!pread_all(0, head_.data(), head_.size())) head_.clear();
        tail_offset_ = size - std::min<std::uint64_t>(size, 8192);
        if (tail_offset_ >= head_.size()) {
            tail_.resize(static_cast<std::size_t>(size - tail_offset_));
            if (!pread_all(tail_offset_, tail_.data(), tail_.size())) tail_.clear();
        }
    }
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    [[nodiscard]] bool contains(std::uint64_t offset, std::uint64_t n) const noexcept {
        const auto end = add(offset, n);
        return end && *end <= size_;
    }
    /// False when the range is not inside the file or the file ends early (changed meanwhile).
    [[nodiscard]] bool read(std::uint64_t offset, void* out, std::size_t n) const noexcept {
        if (!contains(offset, n)) return false;
        if (offset + n <= head_.size()) {
            std::memcpy(out, head_.data() + offset, n);
            return true;
        }
        if (!tail_.empty() && offset >= tail_offset_) {
            std::memcpy(out, tail_.data() + (offset - tail_offset_), n);
            return true;
        }
        return pread_all(offset, out, n);
    }

private:
    [[nodiscard]] bool pread_all(std::uint64_t offset, void* out, std::size_t n) const noexcept {
        auto* p = static_cast<unsigned char*>(out);
        while (n > 0) {
            const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return false;
            p += got;
            n -= static_cast<std::size_t>(got);
            offset += static_cast<std::uint64_t>(got);
        }
        return true;
    }

    int fd_;
    std::uint64_t size_;
    std::vector<unsigned char> head_, tail_;
    std::uint64_t tail_offset_ = 0;
};

/// One PT_LOAD segment, with its index in the program header table (for messages).
struct load_segment {
    std::size_t index;
    std::uint64_t vaddr, memsz, offset, filesz;
    std::uint32_t flags;
};

class checker {
public:
    checker(const file_reader& file, std::string name) : file_(file), name_(std::move(name)) {}

    [[nodiscard]] status run() {
        if (status st = check_header(); !st) return st;
        if (status st = read_program_headers(); !st) return st;
        if (status st = check_loads(); !st) return st;
        if (status st = check_sections(); !st) return st;
        if (status st = check_other_segments(); !st) return st;
        if (status st = read_dynamic(); !st) return st;
        return check_dynamic();
    }

private:
    // ---- messages -------------------------------------------------------------------------

    [[nodiscard]] status fail(const std::string& text) const {
        return {errc::library_load_failed, "'" + name_ + "' " + text};
    }
    [[nodiscard]] status truncated(const std::string& what, std::uint64_t end) const {
        return fail("is truncated: " + what + " needs bytes up to " + dec(end) + ", the file has " +
                    dec(file_.size()) + " (was it still being copied?)");
    }
    [[nodiscard]] status header(const std::string& text) const {
        return fail("has a corrupt ELF header: " + text);
    }
    [[nodiscard]] status program_header(std::size_t index, const std::string& text) const {
        return fail("has a corrupt program header: segment " + dec(index) + " " + text);
    }
    [[nodiscard]] status dynamic(const std::string& text) const {
        return fail("has a corrupt dynamic section: " + text);
    }
    [[nodiscard]] status section(std::size_t index, const std::string& text) const {
        return fail("does not match its section headers: section " + dec(index) + " " + text);
    }
    [[nodiscard]] status unreadable() const {
        return fail(
            "could not be read to the end of its headers (did it change while it was "
            "being checked?)");
    }

    // ---- the ELF header -------------------------------------------------------------------

    [[nodiscard]] status check_header() {
        const std::uint64_t size = file_.size();
        if (size == 0) return fail("is empty (was it still being copied?)");
        unsigned char ident[EI_NIDENT] = {};
        const std::size_t have = size < EI_NIDENT ? static_cast<std::size_t>(size) : EI_NIDENT;
        if (!file_.read(0, ident, have)) return unreadable();
        if (std::memcmp(ident, ELFMAG, have < SELFMAG ? have : SELFMAG) != 0)
            return fail("is not an ELF file (it does not start with the ELF magic \\x7fELF)");
        if (size < sizeof(ehdr_t)) return truncated("the ELF header", sizeof(ehdr_t));
        if (ident[EI_CLASS] != native_class) {
            if (ident[EI_CLASS] == ELFCLASS32 || ident[EI_CLASS] == ELFCLASS64)
                return fail(std::string("is a ") + (ident[EI_CLASS] == ELFCLASS64 ? "64" : "32") +
                            "-bit library; this process is " + (is64 ? "64" : "32") + "-bit");
            return header("invalid ELF class " + dec(ident[EI_CLASS]));
        }
        if (ident[EI_DATA] != native_data) {
            if (ident[EI_DATA] == ELFDATA2LSB || ident[EI_DATA] == ELFDATA2MSB)
                return fail(std::string("is ") +
                            (ident[EI_DATA] == ELFDATA2MSB ? "big" : "little") +
                            "-endian; this process is " +
                            (native_data == ELFDATA2MSB ? "big" : "little") + "-endian");
            return header("invalid byte order " + dec(ident[EI_DATA]));
        }
        if (ident[EI_VERSION] != EV_CURRENT)
            return header("ELF version " + dec(ident[EI_VERSION]) + ", expected " +
                          dec(EV_CURRENT));
        if (!file_.read(0, &eh_, sizeof eh_)) return unreadable();
        if (eh_.e_version != EV_CURRENT)
            return header("e_version is " + dec(eh_.e_version) + ", expected " + dec(EV_CURRENT));
        if (eh_.e_type != ET_DYN)
            return fail("is not a shared library: it is " + type_name(eh_.e_type));
        if (native_machine != EM_NONE && eh_.e_machine != native_machine)
            return fail("is built for " + machine_name(eh_.e_machine) + "; this process runs on " +
                        machine_name(native_machine));
        if (eh_.e_ehsize != sizeof(ehdr_t))
            return header("e_ehsize is " + dec(eh_.e_ehsize) + ", expected " + dec(sizeof(ehdr_t)));
        if (eh_.e_phentsize != sizeof(phdr_t))
            return header("program header entries are " + dec(eh_.e_phentsize) +
                          " bytes, expected " + dec(sizeof(phdr_t)));
        if (eh_.e_phnum == PN_XNUM)
            return header("extended program header numbering (PN_XNUM) is not supported");
        if (eh_.e_phnum == 0) return header("no program headers (e_phnum is 0)");
        if (eh_.e_phnum > max_program_headers)
            return header(dec(eh_.e_phnum) + " program headers, more than the " +
                          dec(max_program_headers) + " a library plausibly has");
        const std::uint64_t table = std::uint64_t{eh_.e_phnum} * sizeof(phdr_t);
        if (eh_.e_phoff < sizeof(ehdr_t))
            return header("the program header table at offset " + dec(eh_.e_phoff) +
                          " overlaps the ELF header");
        if (eh_.e_phoff > size)
            return header("the program header table at offset " + dec(eh_.e_phoff) +
                          " lies outside the file (" + dec(size) + " bytes)");
        if (!file_.contains(eh_.e_phoff, table))
            return truncated("the program header table", eh_.e_phoff + table);
        return {};
    }

    // ---- program headers ------------------------------------------------------------------

    [[nodiscard]] status read_program_headers() {
        phdrs_.resize(eh_.e_phnum);
        if (!file_.read(eh_.e_phoff, phdrs_.data(), phdrs_.size() * sizeof(phdr_t)))
            return unreadable();
        return {};
    }

    [[nodiscard]] status check_loads() {
        const long page_size = ::sysconf(_SC_PAGESIZE);
        page_ = page_size > 0 ? static_cast<std::uint64_t>(page_size) : 4096;
        const std::uint64_t page = page_;
        for (std::size_t i = 0; i < phdrs_.size(); ++i) {
            const phdr_t& ph = phdrs_[i];
            if (ph.p_type != PT_LOAD) continue;
            const auto file_end = add(ph.p_offset, ph.p_filesz);
            if (!file_end)
                return program_header(i, "has a file range that overflows (offset " +
                                             hex(ph.p_offset) + ", " + hex(ph.p_filesz) +
                                             " bytes)");
            if (ph.p_filesz > ph.p_memsz)
                return program_header(i, "has more file bytes (" + dec(ph.p_filesz) +
                                             ") than memory bytes (" + dec(ph.p_memsz) + ")");
            const auto mem_end = add(ph.p_vaddr, ph.p_memsz);
            if (!mem_end || *mem_end > UINT64_MAX - page)
                return program_header(i, "has an address range that overflows (address " +
                                             hex(ph.p_vaddr) + ", " + hex(ph.p_memsz) + " bytes)");
            if (*file_end > file_.size()) return truncated("segment " + dec(i), *file_end);
            if (ph.p_align > 1) {
                if (!is_pow2(ph.p_align))
                    return program_header(
                        i, "has an alignment (" + hex(ph.p_align) + ") that is not a power of two");
                if (ph.p_offset % ph.p_align != ph.p_vaddr % ph.p_align)
                    return program_header(i, "has a file offset (" + hex(ph.p_offset) +
                                                 ") and an address (" + hex(ph.p_vaddr) +
                                                 ") that disagree modulo its alignment (" +
                                                 hex(ph.p_align) + ")");
            }
            if (ph.p_offset % page != ph.p_vaddr % page)
                return program_header(i, "has a file offset (" + hex(ph.p_offset) +
                                             ") and an address (" + hex(ph.p_vaddr) +
                                             ") that disagree modulo the page size (" + hex(page) +
                                             ")");
            // ld.so reserves the span from the first to the last segment and maps each one
            // MAP_FIXED inside it: a segment out of order would land outside the reservation.
            if (!loads_.empty()) {
                const load_segment& prev = loads_.back();
                if (ph.p_vaddr < prev.vaddr + prev.memsz)
                    return program_header(i, "(address " + hex(ph.p_vaddr) +
                                                 ") overlaps or precedes segment " +
                                                 dec(prev.index) +
                                                 " (loadable segments must be in ascending "
                                                 "address order)");
            }
            loads_.push_back({i, ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, ph.p_flags});
        }
        if (loads_.empty()) return fail("has no loadable segment (PT_LOAD)");
        return {};
    }

    // The PT_LOAD whose file-backed part [vaddr, vaddr + filesz) holds [addr, addr + n).
    [[nodiscard]] const load_segment* file_backed(std::uint64_t addr, std::uint64_t n) const {
        const auto end = add(addr, n);
        if (!end) return nullptr;
        for (const load_segment& s : loads_)
            if (addr >= s.vaddr && *end <= s.vaddr + s.filesz) return &s;
        return nullptr;
    }
    // The PT_LOAD whose memory [vaddr, vaddr + memsz) holds [addr, addr + n).
    [[nodiscard]] const load_segment* in_memory(std::uint64_t addr, std::uint64_t n) const {
        const auto end = add(addr, n);
        if (!end) return nullptr;
        for (const load_segment& s : loads_)
            if (addr >= s.vaddr && *end <= s.vaddr + s.memsz) return &s;
        return nullptr;
    }
    // The PT_LOAD in whose pages [addr, addr + n) lies (lld ends PT_GNU_RELRO at the page
    // boundary after its segment; ld.so protects whole pages).
    [[nodiscard]] const load_segment* in_one_segments_pages(std::uint64_t addr,
                                                            std::uint64_t n) const {
        const auto end = add(addr, n);
        if (!end) return nullptr;
        for (const load_segment& s : loads_) {
            const std::uint64_t pages_end = (s.vaddr + s.memsz + page_ - 1) / page_ * page_;
            if (addr >= s.vaddr && *end <= pages_end) return &s;
        }
        return nullptr;
    }
    static std::uint64_t file_offset(const load_segment& s, std::uint64_t addr) {
        return s.offset + (addr - s.vaddr);
    }

    // A segment ld.so (or the unwinder) reads in memory: it must be file-backed, from its own
    // file offset.
    [[nodiscard]] status check_read_in_memory(std::size_t i, const char* what,
                                              std::uint64_t bytes) const {
        const phdr_t& ph = phdrs_[i];
        if (ph.p_filesz > ph.p_memsz)
            return program_header(i, std::string("(") + what + ") has more file bytes (" +
                                         dec(ph.p_filesz) + ") than memory bytes (" +
                                         dec(ph.p_memsz) + ")");
        const load_segment* s = file_backed(ph.p_vaddr, bytes);
        if (s == nullptr)
            return program_header(i, std::string("(") + what + ", address " + hex(ph.p_vaddr) +
                                         ", " + dec(bytes) +
                                         " bytes) is not inside the file-backed part of a "
                                         "loadable segment");
        if (ph.p_filesz > 0 && file_offset(*s, ph.p_vaddr) != ph.p_offset)
            return program_header(i, std::string("(") + what + ") says file offset " +
                                         hex(ph.p_offset) + ", but segment " + dec(s->index) +
                                         " maps its address " + hex(ph.p_vaddr) + " from offset " +
                                         hex(file_offset(*s, ph.p_vaddr)));
        return {};
    }

    [[nodiscard]] status check_other_segments() {
        std::size_t dynamics = 0, tls = 0, relro = 0;
        for (std::size_t i = 0; i < phdrs_.size(); ++i) {
            const phdr_t& ph = phdrs_[i];
            status st;
            switch (ph.p_type) {
                case PT_DYNAMIC:
                    ++dynamics;
                    dynamic_index_ = i;
                    if (ph.p_vaddr % word != 0)
                        return program_header(i,
                                              "(the dynamic section) has a misaligned "
                                              "address " +
                                                  hex(ph.p_vaddr));
                    st = check_read_in_memory(i, "the dynamic section", ph.p_filesz);
                    break;
                case PT_TLS:
                    ++tls;
                    if (ph.p_align > 1 && !is_pow2(ph.p_align))
                        return program_header(i, "(thread-local storage) has an alignment (" +
                                                     hex(ph.p_align) +
                                                     ") that is not a power of two");
                    st = check_read_in_memory(i, "thread-local storage", ph.p_filesz);
                    if (st && !shdrs_.empty() && ph.p_filesz > 0 &&
                        !spans_sections(ph.p_vaddr, ph.p_filesz, [](const shdr_t& sh) {
                            return (sh.sh_flags & SHF_TLS) != 0 && sh.sh_type != SHT_NOBITS;
                        }))
                        st = not_sections(i, "thread-local storage", "thread-local data");
                    break;
                case PT_NOTE:
                    if (ph.p_filesz > max_note_bytes)
                        return program_header(i, "(notes) has " + dec(ph.p_filesz) +
                                                     " bytes, more than the " +
                                                     dec(max_note_bytes) + " notes plausibly take");
                    if (!file_.contains(ph.p_offset, ph.p_filesz))
                        return truncated("segment " + dec(i) + " (notes)",
                                         add(ph.p_offset, ph.p_filesz).value_or(UINT64_MAX));
                    st = check_notes(i, "notes");
                    break;
                case pt_gnu_property:
                    st = check_read_in_memory(i, "program properties", ph.p_memsz);
                    if (st) st = check_notes(i, "program properties");
                    break;
                case PT_GNU_EH_FRAME:
                    st = check_read_in_memory(i, "the unwind table header", ph.p_memsz);
                    if (st && !shdrs_.empty() && ph.p_memsz > 0 &&
                        !spans_sections(ph.p_vaddr, ph.p_memsz, [](const shdr_t& sh) {
                            return sh.sh_type != SHT_NOBITS;  // LLVM types it X86_64_UNWIND
                        }))
                        st = not_sections(i, "the unwind table header", "data");
                    break;
                case PT_PHDR: {
                    const std::uint64_t table = std::uint64_t{eh_.e_phnum} * sizeof(phdr_t);
                    const load_segment* s = file_backed(ph.p_vaddr, table);
                    if (s == nullptr || file_offset(*s, ph.p_vaddr) != eh_.e_phoff)
                        return program_header(
                            i, "(the program header table, address " + hex(ph.p_vaddr) +
                                   ") does not map the table at file offset " + hex(eh_.e_phoff));
                    break;
                }
                case PT_GNU_RELRO:
                    ++relro;
                    st = check_relro(i);
                    break;
                default:
                    break;
            }
            if (!st) return st;
        }
        if (dynamics == 0)
            return fail("has no dynamic section (PT_DYNAMIC): it is not a shared library");
        if (dynamics > 1) return fail("has " + dec(dynamics) + " dynamic sections (PT_DYNAMIC)");
        if (tls > 1) return fail("has " + dec(tls) + " thread-local storage segments (PT_TLS)");
        if (relro > 1) return fail("has " + dec(relro) + " PT_GNU_RELRO segments");
        return {};
    }

    [[nodiscard]] status not_sections(std::size_t i, const char* what, const char* kind) const {
        const phdr_t& ph = phdrs_[i];
        return fail("does not match its section headers: segment " + dec(i) + " (" + what +
                    ", address " + hex(ph.p_vaddr) + ", " + dec(ph.p_memsz) + " bytes) is not a " +
                    kind + " section there");
    }

    // ld.so parses notes (PT_NOTE from the file, PT_GNU_PROPERTY in memory) by the sizes in
    // them: the segment must be the notes sections, not other bytes.
    [[nodiscard]] status check_notes(std::size_t i, const char* what) const {
        const phdr_t& ph = phdrs_[i];
        if (shdrs_.empty() || ph.p_filesz == 0) return {};
        const bool found = spans_sections(ph.p_vaddr, ph.p_filesz, [&](const shdr_t& sh) {
            return sh.sh_type == SHT_NOTE && sh.sh_offset - sh.sh_addr == ph.p_offset - ph.p_vaddr;
        });
        return found ? status{} : not_sections(i, what, "note");
    }

    // After relocation ld.so makes the pages of PT_GNU_RELRO read-only (whole pages, rounded
    // down at both ends): they must be pages of a writable segment, and no writable section may
    // lose its writes there: none may have bytes in those pages before the range starts, and no
    // .bss (writable, no file bytes: written at run time by definition) may have any. (A range
    // grown over initialised data alone is not detected.)
    [[nodiscard]] status check_relro(std::size_t i) const {
        const phdr_t& ph = phdrs_[i];
        const load_segment* s = in_one_segments_pages(ph.p_vaddr, ph.p_memsz);
        if (s == nullptr)
            return program_header(i, "(read-only after relocation, address " + hex(ph.p_vaddr) +
                                         ", " + dec(ph.p_memsz) +
                                         " bytes) is not inside one loadable segment");
        if ((s->flags & PF_W) == 0)
            return program_header(i, "(read-only after relocation) lies in segment " +
                                         dec(s->index) + ", which is not writable");
        const std::uint64_t first_page = ph.p_vaddr / page_ * page_;
        const std::uint64_t last_page = (ph.p_vaddr + ph.p_memsz) / page_ * page_;
        for (std::size_t k = 1; k < shdrs_.size(); ++k) {
            const shdr_t& sh = shdrs_[k];
            if ((sh.sh_flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE) ||
                (sh.sh_flags & SHF_TLS) != 0 || sh.sh_size == 0)
                continue;
            // Inside a segment (check_sections): no overflow.
            const std::uint64_t from = std::max<std::uint64_t>(sh.sh_addr, first_page);
            const std::uint64_t to = std::min<std::uint64_t>(sh.sh_addr + sh.sh_size, last_page);
            if (from >= to) continue;
            // lld's .relro_padding is .bss-like, and ends exactly where the range ends.
            const bool padding = sh.sh_addr + sh.sh_size == ph.p_vaddr + ph.p_memsz;
            if (from < ph.p_vaddr || (sh.sh_type == SHT_NOBITS && !padding))
                return fail("does not match its section headers: segment " + dec(i) +
                            " (read-only after relocation, address " + hex(ph.p_vaddr) + ", " +
                            dec(ph.p_memsz) + " bytes) would make writable section " + dec(k) +
                            " (address " + hex(sh.sh_addr) + ") read-only");
        }
        return {};
    }

    // ---- section headers ------------------------------------------------------------------

    [[nodiscard]] status check_sections() {
        if (eh_.e_shoff == 0) {
            if (eh_.e_shnum != 0)
                return header(dec(eh_.e_shnum) + " section headers at file offset 0");
            return {};  // no section header table (sstrip): the program headers are all we have
        }
        if (eh_.e_shentsize != sizeof(shdr_t))
            return header("section header entries are " + dec(eh_.e_shentsize) +
                          " bytes, expected " + dec(sizeof(shdr_t)));
        if (eh_.e_shoff < sizeof(ehdr_t))
            return header("the section header table at offset " + dec(eh_.e_shoff) +
                          " overlaps the ELF header");
        std::uint64_t count = eh_.e_shnum;
        if (count == 0) {  // extended numbering: the count is in section 0's sh_size
            shdr_t first{};
            if (!file_.contains(eh_.e_shoff, sizeof first))
                return truncated("the section header table",
                                 add(eh_.e_shoff, sizeof first).value_or(UINT64_MAX));
            if (!file_.read(eh_.e_shoff, &first, sizeof first)) return unreadable();
            count = first.sh_size;
            if (count == 0) return header("an empty section header table at a nonzero offset");
        }
        if (count > max_sections)
            return header(dec(count) + " sections, more than the " + dec(max_sections) +
                          " supported");
        const std::uint64_t table = count * sizeof(shdr_t);
        if (!file_.contains(eh_.e_shoff, table))
            return truncated("the section header table",
                             add(eh_.e_shoff, table).value_or(UINT64_MAX));
        shdrs_.resize(static_cast<std::size_t>(count));
        if (!file_.read(eh_.e_shoff, shdrs_.data(), static_cast<std::size_t>(table)))
            return unreadable();

        for (std::size_t i = 1; i < shdrs_.size(); ++i) {
            const shdr_t& sh = shdrs_[i];
            if (sh.sh_type == SHT_NULL || sh.sh_size == 0) continue;
            const bool nobits = sh.sh_type == SHT_NOBITS;
            if (!nobits && !file_.contains(sh.sh_offset, sh.sh_size))
                return truncated("section " + dec(i),
                                 add(sh.sh_offset, sh.sh_size).value_or(UINT64_MAX));
            if ((sh.sh_flags & SHF_ALLOC) == 0) continue;
            if (nobits && (sh.sh_flags & SHF_TLS) != 0) continue;  // .tbss takes no address
            const load_segment* s =
                nobits ? in_memory(sh.sh_addr, sh.sh_size) : file_backed(sh.sh_addr, sh.sh_size);
            if (s == nullptr)
                return section(i, "(address " + hex(sh.sh_addr) + ", " + dec(sh.sh_size) +
                                      " bytes) is not inside " +
                                      (nobits ? "a loadable segment"
                                              : "the file-backed part of a loadable segment"));
            // ld.so zeroes only what lies past the file bytes: a .bss under them would start
            // with file bytes instead of zeros.
            if (nobits && sh.sh_addr < s->vaddr + s->filesz)
                return section(i, "(no file bytes, address " + hex(sh.sh_addr) +
                                      ") lies in the file-backed part of segment " + dec(s->index) +
                                      ", so it would not start zeroed");
            if (!nobits && file_offset(*s, sh.sh_addr) != sh.sh_offset)
                return section(i, "(address " + hex(sh.sh_addr) + ") is at file offset " +
                                      hex(sh.sh_offset) + ", but segment " + dec(s->index) +
                                      " maps that address from offset " +
                                      hex(file_offset(*s, sh.sh_addr)));
            if ((sh.sh_flags & SHF_WRITE) != 0 && (s->flags & PF_W) == 0)
                return section(
                    i, "is writable, but segment " + dec(s->index) + " that maps it is not");
            if ((sh.sh_flags & SHF_EXECINSTR) != 0 && (s->flags & PF_X) == 0)
                return section(
                    i, "is code, but segment " + dec(s->index) + " that maps it is not executable");
            if ((sh.sh_flags & SHF_EXECINSTR) == 0 && (s->flags & PF_R) == 0)
                return section(
                    i, "is data, but segment " + dec(s->index) + " that maps it is not readable");
        }
        return {};
    }

    // ---- the dynamic section --------------------------------------------------------------

    [[nodiscard]] status read_dynamic() {
        const phdr_t& ph = phdrs_[dynamic_index_];
        const std::uint64_t count = ph.p_filesz / sizeof(dyn_t);
        if (count > max_dynamic_entries)
            return dynamic(dec(count) + " entries, more than the " + dec(max_dynamic_entries) +
                           " supported");
        std::vector<dyn_t> entries(static_cast<std::size_t>(count));
        if (!file_.read(ph.p_offset, entries.data(), entries.size() * sizeof(dyn_t)))
            return unreadable();
        for (const dyn_t& d : entries) {
            const auto tag = static_cast<std::int64_t>(d.d_tag);
            if (tag == DT_NULL) return {};
            dyn_.push_back({tag, static_cast<std::uint64_t>(d.d_un.d_val)});
        }
        return dynamic("no DT_NULL entry ends it within its " + dec(ph.p_filesz) + " bytes");
    }

    [[nodiscard]] std::size_t occurrences(std::int64_t tag) const {
        std::size_t n = 0;
        for (const auto& [t, v] : dyn_) n += t == tag ? 1 : 0;
        return n;
    }
    [[nodiscard]] std::optional<std::uint64_t> value(std::int64_t tag) const {
        for (const auto& [t, v] : dyn_)
            if (t == tag) return v;
        return std::nullopt;
    }
    [[nodiscard]] bool has(std::int64_t tag) const { return value(tag).has_value(); }

    [[nodiscard]] status check_dynamic() {
        for (const table_rule& rule : table_rules)
            if (occurrences(rule.tag) > 1)
                return dynamic(std::string(tag_name(rule.tag)) + " appears " +
                               dec(occurrences(rule.tag)) + " times");
        for (const std::int64_t tag : single_tags)
            if (occurrences(tag) > 1)
                return dynamic(std::string(tag_name(tag)) + " appears " + dec(occurrences(tag)) +
                               " times");

        // The companions ld.so reads without looking whether they are there.
        auto require = [&](std::int64_t tag, std::int64_t needed) -> status {
            if (has(tag) && !has(needed))
                return dynamic(std::string(tag_name(tag)) + " is present without " +
                               tag_name(needed));
            return {};
        };
        for (const table_rule& rule : table_rules)
            if (rule.size_tag != DT_NULL)
                if (status st = require(rule.tag, rule.size_tag); !st) return st;
        if (status st = require(DT_RELA, DT_RELAENT); !st) return st;
        if (status st = require(DT_REL, DT_RELENT); !st) return st;
        if (status st = require(dt_relr, dt_relrent); !st) return st;
        if (status st = require(DT_PLTREL, DT_JMPREL); !st) return st;
        if (status st = require(DT_JMPREL, DT_PLTREL); !st) return st;
        for (const std::int64_t tag :
             {std::int64_t{DT_HASH}, std::int64_t{DT_GNU_HASH}, std::int64_t{DT_RELA},
              std::int64_t{DT_REL}, std::int64_t{DT_JMPREL}, std::int64_t{DT_VERSYM}}) {
            if (status st = require(tag, DT_SYMTAB); !st) return st;
        }
        for (const std::int64_t tag :
             {std::int64_t{DT_SYMTAB}, std::int64_t{DT_VERNEED}, std::int64_t{DT_VERDEF}}) {
            if (status st = require(tag, DT_STRTAB); !st) return st;
        }
        for (const std::int64_t tag : string_tags)
            if (status st = require(tag, DT_STRTAB); !st) return st;

        if (status st = check_entry_sizes(); !st) return st;
        for (const table_rule& rule : table_rules)
            if (status st = check_table(rule); !st) return st;
        if (status st = check_relative_count<rela_t>(DT_RELACOUNT, DT_RELA); !st) return st;
        if (status st = check_relative_count<rel_t>(DT_RELCOUNT, DT_REL); !st) return st;
        if (status st = check_strings(); !st) return st;
        return check_sections_named();
    }

    // ld.so applies the first DT_RELACOUNT (DT_RELCOUNT) relocations as relative ones without
    // reading their type: they must be relative. Linkers put every relative relocation first
    // (that is what the count is for), so a count too large ends on one that is not: the last
    // relocation counted tells, without reading the whole table.
    template <class Reloc>
    [[nodiscard]] status check_relative_count(std::int64_t count_tag,
                                              std::int64_t table_tag) const {
        const auto count = value(count_tag);
        const auto table = value(table_tag);
        if (native_relative == 0 || !count || *count == 0 || !table) return {};
        // Inside the table (check_entry_sizes), which is file-backed (check_table).
        const load_segment* s = file_backed(*table, *count * sizeof(Reloc));
        if (s == nullptr) return unreadable();
        Reloc last{};
        if (!file_.read(file_offset(*s, *table) + (*count - 1) * sizeof(Reloc), &last, sizeof last))
            return unreadable();
        const std::uint64_t info = last.r_info;
        const std::uint64_t type = is64 ? (info & 0xffffffffu) : (info & 0xffu);
        if (type != native_relative)
            return dynamic(std::string(tag_name(count_tag)) + " says the first " + dec(*count) +
                           " relocations are relative, but relocation " + dec(*count - 1) +
                           " has type " + dec(type));
        return {};
    }

    // The other direction: every dynamic-linking section of the section headers must be a table
    // the dynamic section names. A dynamic section cut short (a DT_NULL too early) or with a tag
    // corrupted into another has lost tables, and ld.so would load the library without them
    // (without its relocations, say) and crash in its code later.
    [[nodiscard]] status check_sections_named() const {
        if (shdrs_.empty()) return {};
        auto named = [&](const shdr_t& sh, std::int64_t tag, std::int64_t size_tag) {
            const auto at = value(tag);
            if (!at) return false;
            if (size_tag == DT_NULL) return *at == sh.sh_addr;
            const std::uint64_t n = value(size_tag).value_or(0);
            return sh.sh_addr >= *at && sh.sh_addr - *at <= n &&
                   sh.sh_size <= n - (sh.sh_addr - *at);
        };
        for (std::size_t i = 1; i < shdrs_.size(); ++i) {
            const shdr_t& sh = shdrs_[i];
            if ((sh.sh_flags & SHF_ALLOC) == 0 || sh.sh_size == 0) continue;
            bool ok = true;
            const char* by = "";
            switch (sh.sh_type) {
                case SHT_DYNSYM:
                    ok = named(sh, DT_SYMTAB, DT_NULL), by = "DT_SYMTAB";
                    if (ok && sh.sh_link < shdrs_.size())  // its string table
                        if (!named(shdrs_[sh.sh_link], DT_STRTAB, DT_STRSZ))
                            return dynamic("DT_STRTAB and DT_STRSZ do not name section " +
                                           dec(sh.sh_link) +
                                           ", the string table of symbol "
                                           "table section " +
                                           dec(i));
                    break;
                case SHT_HASH:
                    ok = named(sh, DT_HASH, DT_NULL), by = "DT_HASH";
                    break;
                case SHT_GNU_HASH:
                    ok = named(sh, DT_GNU_HASH, DT_NULL), by = "DT_GNU_HASH";
                    break;
                case SHT_GNU_versym:
                    ok = named(sh, DT_VERSYM, DT_NULL), by = "DT_VERSYM";
                    break;
                case SHT_GNU_verneed:
                    ok = named(sh, DT_VERNEED, DT_NULL), by = "DT_VERNEED";
                    break;
                case SHT_GNU_verdef:
                    ok = named(sh, DT_VERDEF, DT_NULL), by = "DT_VERDEF";
                    break;
                case SHT_RELA:
                    ok = named(sh, DT_RELA, DT_RELASZ) || named(sh, DT_JMPREL, DT_PLTRELSZ);
                    by = "DT_RELA or DT_JMPREL";
                    break;
                case SHT_REL:
                    ok = named(sh, DT_REL, DT_RELSZ) || named(sh, DT_JMPREL, DT_PLTRELSZ);
                    by = "DT_REL or DT_JMPREL";
                    break;
                case sht_relr:
                    ok = named(sh, dt_relr, dt_relrsz), by = "DT_RELR";
                    break;
                case SHT_INIT_ARRAY:
                    ok = named(sh, DT_INIT_ARRAY, DT_INIT_ARRAYSZ), by = "DT_INIT_ARRAY";
                    break;
                case SHT_FINI_ARRAY:
                    ok = named(sh, DT_FINI_ARRAY, DT_FINI_ARRAYSZ), by = "DT_FINI_ARRAY";
                    break;
                case SHT_PREINIT_ARRAY:
                    ok = named(sh, DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ), by = "DT_PREINIT_ARRAY";
                    break;
                case SHT_DYNAMIC:
                    ok = sh.sh_addr == phdrs_[dynamic_index_].p_vaddr, by = "PT_DYNAMIC";
                    break;
                default:
                    continue;
            }
            if (!ok)
                return dynamic("it does not name section " + dec(i) + " (the " +
                               section_type_name(sh.sh_type) + " section at " + hex(sh.sh_addr) +
                               ", " + dec(sh.sh_size) + " bytes) in " + by);
        }
        return {};
    }

    [[nodiscard]] status check_entry_sizes() {
        auto expect = [&](std::int64_t tag, std::uint64_t wanted) -> status {
            if (const auto v = value(tag); v && *v != wanted)
                return dynamic(std::string(tag_name(tag)) + " is " + dec(*v) + ", expected " +
                               dec(wanted));
            return {};
        };
        if (status st = expect(DT_RELAENT, sizeof(rela_t)); !st) return st;
        if (status st = expect(DT_RELENT, sizeof(rel_t)); !st) return st;
        if (status st = expect(dt_relrent, word); !st) return st;
        if (const auto v = value(DT_PLTREL)) {
            const bool known = *v == DT_RELA || *v == DT_REL;
            if (!known || (native_plt_rel != DT_NULL && *v != std::uint64_t(native_plt_rel)))
                return dynamic("DT_PLTREL is " + dec(*v) + ", expected " +
                               (native_plt_rel == DT_REL ? "DT_REL (17)" : "DT_RELA (7)"));
        }
        auto multiple = [&](std::int64_t tag, std::uint64_t unit) -> status {
            if (const auto v = value(tag); v && *v % unit != 0)
                return dynamic(std::string(tag_name(tag)) + " (" + dec(*v) +
                               ") is not a multiple of " + dec(unit));
            return {};
        };
        const std::uint64_t plt_entry =
            value(DT_PLTREL) == std::uint64_t{DT_REL} ? sizeof(rel_t) : sizeof(rela_t);
        for (const auto& [tag, unit] :
             {std::pair<std::int64_t, std::uint64_t>{DT_RELASZ, sizeof(rela_t)},
              {DT_RELSZ, sizeof(rel_t)},
              {DT_PLTRELSZ, plt_entry},
              {dt_relrsz, word},
              {DT_INIT_ARRAYSZ, word},
              {DT_FINI_ARRAYSZ, word},
              {DT_PREINIT_ARRAYSZ, word}}) {
            if (status st = multiple(tag, unit); !st) return st;
        }
        // ld.so applies this many relocations as relative ones without looking at them.
        auto count_within = [&](std::int64_t count_tag, std::int64_t size_tag,
                                std::uint64_t unit) -> status {
            const auto count = value(count_tag);
            if (count && *count > value(size_tag).value_or(0) / unit)
                return dynamic(std::string(tag_name(count_tag)) + " (" + dec(*count) +
                               ") counts more relocations than " + tag_name(size_tag) + " holds");
            return {};
        };
        if (status st = count_within(DT_RELACOUNT, DT_RELASZ, sizeof(rela_t)); !st) return st;
        return count_within(DT_RELCOUNT, DT_RELSZ, sizeof(rel_t));
    }

    [[nodiscard]] status check_table(const table_rule& rule) const {
        const auto addr = value(rule.tag);
        if (!addr) return {};
        const std::string name = tag_name(rule.tag);
        const std::uint64_t bytes =
            rule.size_tag != DT_NULL ? value(rule.size_tag).value_or(0) : rule.min_bytes;
        if (*addr % rule.align != 0)
            return dynamic(name + " points to " + hex(*addr) + ", not aligned to " +
                           dec(rule.align) + " bytes");
        // An empty table is never read: its address only has to be inside (or at the end of) the
        // file-backed part of a segment.
        const load_segment* s = file_backed(*addr, bytes);
        if (s == nullptr)
            return dynamic(name + " points to " + hex(*addr) + " (" + dec(bytes) +
                           " bytes), outside the file-backed part of every loadable segment");
        if ((s->flags & PF_R) == 0 && !rule.code)
            return dynamic(name + " points into segment " + dec(s->index) +
                           ", which is not readable");
        if (rule.code && (s->flags & PF_X) == 0)
            return dynamic(name + " points to " + hex(*addr) + " in segment " + dec(s->index) +
                           ", which is not executable");
        if (shdrs_.empty() || bytes == 0) return {};
        return rule.code ? check_code_section(name, *addr)
                         : check_table_section(rule, *addr, bytes);
    }

    // Whether [addr, addr + bytes) is made of sections `accept` takes: one starts at `addr`,
    // those starting inside reach its end, and no other section has bytes in it (gaps between
    // them are alignment padding). A size tag may span consecutive sections, as DT_RELASZ does
    // over .rela.dyn and .rela.plt.
    template <class Accept>
    [[nodiscard]] bool spans_sections(std::uint64_t addr, std::uint64_t bytes,
                                      Accept accept) const {
        const auto end = add(addr, bytes);
        if (!end) return false;
        bool starts = false;
        std::uint64_t reach = addr;
        for (const shdr_t& sh : shdrs_) {
            if ((sh.sh_flags & SHF_ALLOC) == 0 || sh.sh_size == 0) continue;
            if ((sh.sh_flags & SHF_TLS) != 0 && sh.sh_type == SHT_NOBITS) continue;  // no address
            const auto sh_end = add(sh.sh_addr, sh.sh_size);
            if (!sh_end || *sh_end <= addr || sh.sh_addr >= *end) continue;  // outside
            if (!accept(sh)) return false;
            starts |= sh.sh_addr == addr;
            reach = std::max(reach, *sh_end);
        }
        return starts && reach >= *end;
    }

    // A table the dynamic section points at must be the section of its type there.
    [[nodiscard]] status check_table_section(const table_rule& rule, std::uint64_t addr,
                                             std::uint64_t bytes) const {
        if (rule.section_types[0] == SHT_NULL) return {};
        const bool found = spans_sections(addr, bytes, [&](const shdr_t& sh) {
            return sh.sh_type == rule.section_types[0] || sh.sh_type == rule.section_types[1];
        });
        if (found) return {};
        return dynamic(std::string(tag_name(rule.tag)) + " points to " + hex(addr) + " (" +
                       dec(bytes) + " bytes), which is not a " +
                       section_type_name(rule.section_types[0]) +
                       " section of this file's section headers");
    }

    // Whether section `sh` is named `name` in the section name table (false when that table
    // is not there or not a string table).
    [[nodiscard]] bool section_named(const shdr_t& sh, std::string_view name) const {
        if (eh_.e_shstrndx >= shdrs_.size()) return false;
        const shdr_t& names = shdrs_[eh_.e_shstrndx];
        if (names.sh_type != SHT_STRTAB || sh.sh_name >= names.sh_size ||
            names.sh_size - sh.sh_name < name.size() + 1)
            return false;
        char buf[16] = {};
        if (name.size() + 1 > sizeof buf ||
            !file_.read(names.sh_offset + sh.sh_name, buf, name.size() + 1))
            return false;
        return std::string_view(buf, name.size()) == name && buf[name.size()] == '\0';
    }

    // ld.so calls DT_INIT and DT_FINI: each must lie in a code section and, where the library
    // keeps its symbol table (it is not stripped), start .init (.fini) or be one of its
    // functions (the one named by -init=<function>). A stripped library's are only known to be
    // in its code.
    [[nodiscard]] status check_code_section(const std::string& name, std::uint64_t addr) const {
        bool in_code = false, symtab = false;
        const std::string_view own = name == "DT_INIT" ? ".init" : ".fini";
        for (const shdr_t& sh : shdrs_) {
            const bool here = (sh.sh_flags & SHF_EXECINSTR) != 0 && addr >= sh.sh_addr &&
                              addr - sh.sh_addr < sh.sh_size;
            if (here && sh.sh_addr == addr && section_named(sh, own)) return {};
            in_code |= here;
            symtab |= sh.sh_type == SHT_SYMTAB;
        }
        if (!in_code)
            return dynamic(name + " points to " + hex(addr) +
                           ", which is not inside a code section of this file's section headers");
        if (!symtab) return {};
        for (const shdr_t& sh : shdrs_) {
            if (sh.sh_type != SHT_SYMTAB || sh.sh_entsize != sizeof(sym_t)) continue;
            std::vector<sym_t> chunk(256);
            for (std::uint64_t at = 0; at + sizeof(sym_t) <= sh.sh_size;) {
                const std::uint64_t n =
                    std::min<std::uint64_t>(chunk.size(), (sh.sh_size - at) / sizeof(sym_t));
                const auto bytes = static_cast<std::size_t>(n * sizeof(sym_t));
                if (!file_.read(sh.sh_offset + at, chunk.data(), bytes)) return unreadable();
                for (std::size_t k = 0; k < n; ++k) {
                    const sym_t& sym = chunk[k];
                    if (sym.st_value == addr && sym.st_shndx != SHN_UNDEF &&
                        (sym.st_info & 0xf) == STT_FUNC)
                        return {};
                }
                at += bytes;
            }
        }
        return dynamic(name + " points to " + hex(addr) +
                       ", which is not a function of this file's symbol table");
    }

    static std::string section_type_name(std::uint32_t type) {
        switch (type) {
            case SHT_STRTAB:
                return "string table";
            case SHT_DYNSYM:
                return "symbol table";
            case SHT_HASH:
                return "hash table (SHT_HASH)";
            case SHT_GNU_HASH:
                return "GNU hash table";
            case SHT_RELA:
            case SHT_REL:
            case sht_relr:
                return "relocation";
            case SHT_INIT_ARRAY:
            case SHT_FINI_ARRAY:
            case SHT_PREINIT_ARRAY:
                return "function pointer array";
            case SHT_GNU_versym:
            case SHT_GNU_verdef:
            case SHT_GNU_verneed:
                return "symbol version";
            case SHT_DYNAMIC:
                return "dynamic";
            default:
                return "matching";
        }
    }

    [[nodiscard]] static bool is_string_tag(std::int64_t tag) {
        for (const std::int64_t string_tag : string_tags)
            if (tag == string_tag) return true;
        return false;
    }

    // Every string the dynamic section names starts inside the string table and ends there.
    [[nodiscard]] status check_strings() const {
        const auto strtab = value(DT_STRTAB);
        if (!strtab) return {};
        const std::uint64_t strsz = value(DT_STRSZ).value_or(0);
        const load_segment* s = file_backed(*strtab, strsz);  // found: check_table passed
        if (s == nullptr || strsz == 0) {
            for (const auto& [tag, offset] : dyn_)
                if (is_string_tag(tag))
                    return dynamic(std::string(tag_name(tag)) + " names string offset " +
                                   hex(offset) + ", but the string table is empty");
            return {};
        }
        // ld.so reads these strings, and compares symbol names, with the C string functions:
        // the table must end with a NUL, and then every string starting inside it ends there.
        char last = 1;
        if (!file_.read(file_offset(*s, *strtab) + strsz - 1, &last, 1)) return unreadable();
        if (last != '\0')
            return dynamic("the string table (DT_STRTAB " + hex(*strtab) + ", DT_STRSZ " +
                           dec(strsz) + ") does not end with a NUL byte");
        for (const auto& [tag, offset] : dyn_) {
            if (is_string_tag(tag) && offset >= strsz)
                return dynamic(std::string(tag_name(tag)) + " names string offset " + hex(offset) +
                               ", past the end of the string table (DT_STRSZ " + dec(strsz) + ")");
        }
        return {};
    }

    const file_reader& file_;
    std::string name_;
    ehdr_t eh_{};
    std::vector<phdr_t> phdrs_;
    std::vector<load_segment> loads_;
    std::vector<shdr_t> shdrs_;
    std::size_t dynamic_index_ = 0;
    std::uint64_t page_ = 4096;
    std::vector<std::pair<std::int64_t, std::uint64_t>> dyn_;  // up to DT_NULL, in order
};

/// Closes a file descriptor when it goes out of scope.
class fd_guard {
public:
    explicit fd_guard(int fd) noexcept : fd_(fd) {}
    ~fd_guard() {
        if (fd_ >= 0) ::close(fd_);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    [[nodiscard]] int get() const noexcept { return fd_; }

private:
    int fd_;
};

}  // namespace elf_check_impl

#endif  // POLYPLUG_DETAIL_ELF_CHECK

/// Checks that `file` is a shared library this process can load and that its headers are inside
/// the file and consistent, before dlopen maps it (see the file comment for what and why).
///
/// Errors: errc::library_load_failed with a message naming the file and the problem, such as
/// "'libx.so' is truncated: segment 2 needs bytes up to 16384, the file has 8000 (was it still
/// being copied?)". On platforms without ELF, always success.
[[nodiscard]] inline status check_elf_library(const std::filesystem::path& file) {
#if defined(POLYPLUG_DETAIL_ELF_CHECK)
    using namespace elf_check_impl;
    const std::string name = file.filename().string();
    // O_NONBLOCK: a FIFO in the artifact's place must not block the check (it is refused).
    const fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0)
        return {errc::library_load_failed,
                "'" + name + "' cannot be opened: " + std::generic_category().message(errno)};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return {errc::library_load_failed,
                "'" + name + "' cannot be examined: " + std::generic_category().message(errno)};
    if (!S_ISREG(st.st_mode))
        return {errc::library_load_failed, "'" + name + "' is not a regular file"};
    const file_reader reader(fd.get(), static_cast<std::uint64_t>(st.st_size));
    return checker(reader, name).run();
#else
    (void)file;
    return {};
#endif
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
