// SPDX-License-Identifier: MIT
/// @file elf_exports.hpp
/// Lists the functions and objects an ELF shared object exports, by reading the file: the
/// library is never loaded, so none of its code (constructors, IFUNC resolvers) runs. This is
/// what `polyplug validate` uses to check that a plugin defines `polyplug_abi_version` and
/// `polyplug_init` before anyone dlopen()s it.
///
/// The input is treated as hostile: every offset and size is checked (without overflow) before
/// it is used, so a truncated or corrupted file gives `ok == false` and a specific message, never
/// a crash or an out-of-bounds read. Allocation is bounded: files over 512 MiB are refused and the
/// number and total length of the names collected are capped.
///
/// ELF32 and ELF64, little- and big-endian, are decoded by hand with explicit byte order, so the
/// reader works on any host (including ones without <elf.h>) and for any target. The dynamic
/// symbol table is found through the section headers (SHT_DYNSYM and its sh_link string table);
/// when there are none (stripped with sstrip and the like) or they have no SHT_DYNSYM, it is found
/// the way the dynamic loader finds it: PT_DYNAMIC's DT_SYMTAB, DT_STRTAB and DT_STRSZ, with the
/// symbol count taken from DT_HASH's nchain or by walking DT_GNU_HASH.
///
/// @code
/// auto exports = polyplug::tools::read_elf_exports("libfoo.so");
/// if (!exports.ok) std::fprintf(stderr, "libfoo.so: %s\n", exports.error.c_str());
/// else if (!polyplug::tools::exports_function(exports, "polyplug_init")) { ... }
/// @endcode
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace polyplug::tools {

/// What read_elf_exports() found. Names are in .dynsym order; a name can appear twice when the
/// library defines several versions of a symbol (symbol versioning). Version-script node symbols
/// (absolute STT_OBJECT symbols named after the version, e.g. "LIBFOO_1") appear in `objects`.
struct elf_exports_result {
    /// False: not a readable ELF file with a dynamic symbol table; `error` says why.
    bool ok = false;
    /// Why `ok` is false (empty when it is true), e.g. "not an ELF file (bad magic)".
    std::string error;
    /// Defined (st_shndx != SHN_UNDEF), GLOBAL, WEAK or GNU_UNIQUE, default or protected
    /// visibility STT_FUNC and STT_GNU_IFUNC symbols of the dynamic symbol table.
    std::vector<std::string> functions;
    /// The same for STT_OBJECT symbols (informational).
    std::vector<std::string> objects;
    /// e_machine, compare with elf_host_machine(); set as soon as the header could be read.
    std::uint16_t machine = 0;
    /// e_type; a plugin should be ET_DYN (3). Not checked here, so callers can say what is wrong.
    std::uint16_t type = 0;
};

/// Reads `file` (at most 512 MiB) and lists its exports. Never throws.
[[nodiscard]] elf_exports_result read_elf_exports(const std::filesystem::path& file) noexcept;

/// Lists the exports of an ELF image held in memory (tests and fuzzing use this). Never throws;
/// never reads outside `bytes`.
[[nodiscard]] elf_exports_result read_elf_exports_from_bytes(
    std::span<const unsigned char> bytes) noexcept;

/// Whether `result` lists `name` among its functions.
[[nodiscard]] inline bool exports_function(const elf_exports_result& result,
                                           std::string_view name) noexcept {
    return std::find(result.functions.begin(), result.functions.end(), name) !=
           result.functions.end();
}

/// The e_machine values polyplug cares about. Spelled out here instead of taken from <elf.h>,
/// which Windows and macOS do not have.
/// (The em_ prefix also keeps them clear of predefined macros such as `i386` and `mips`.)
inline constexpr std::uint16_t em_none = 0;
inline constexpr std::uint16_t em_386 = 3;
inline constexpr std::uint16_t em_mips = 8;
inline constexpr std::uint16_t em_ppc = 20;
inline constexpr std::uint16_t em_ppc64 = 21;
inline constexpr std::uint16_t em_s390 = 22;
inline constexpr std::uint16_t em_arm = 40;
inline constexpr std::uint16_t em_x86_64 = 62;
inline constexpr std::uint16_t em_aarch64 = 183;
inline constexpr std::uint16_t em_riscv = 243;
inline constexpr std::uint16_t em_loongarch = 258;

/// A short name for an e_machine value, for messages such as "plugin is aarch64, host is x86_64".
[[nodiscard]] inline std::string_view elf_machine_name(std::uint16_t machine) noexcept {
    switch (machine) {
        case em_386:
            return "i386";
        case em_mips:
            return "mips";
        case em_ppc:
            return "ppc";
        case em_ppc64:
            return "ppc64";
        case em_s390:
            return "s390";
        case em_arm:
            return "arm";
        case em_x86_64:
            return "x86_64";
        case em_aarch64:
            return "aarch64";
        case em_riscv:
            return "riscv";
        case em_loongarch:
            return "loongarch";
        default:
            return "unknown";
    }
}

/// The e_machine of the platform this is compiled for, so a plugin built for another machine can
/// be reported before loading fails with a vaguer message; em_none (0) if unknown.
[[nodiscard]] inline std::uint16_t elf_host_machine() noexcept {
#if defined(__x86_64__) || defined(_M_X64) || defined(_M_AMD64)
    return em_x86_64;
#elif defined(__i386__) || defined(_M_IX86)
    return em_386;
#elif defined(__aarch64__) || defined(_M_ARM64)
    return em_aarch64;
#elif defined(__arm__) || defined(_M_ARM)
    return em_arm;
#elif defined(__riscv)
    return em_riscv;
#elif defined(__powerpc64__)
    return em_ppc64;
#elif defined(__powerpc__)
    return em_ppc;
#elif defined(__s390__) || defined(__s390x__)
    return em_s390;
#elif defined(__loongarch__)
    return em_loongarch;
#elif defined(__mips__)
    return em_mips;
#else
    return em_none;
#endif
}

/// A short description of an e_type value, for messages such as "not a shared object
/// (executable)".
[[nodiscard]] inline std::string_view elf_type_name(std::uint16_t type) noexcept {
    switch (type) {
        case 0:
            return "no file type";
        case 1:
            return "relocatable object";
        case 2:
            return "executable";
        case 3:
            return "shared object";
        case 4:
            return "core dump";
        default:
            return "unknown";
    }
}

namespace detail {

/// Bigger files are refused: no plugin is that large, and the whole file is read into memory.
inline constexpr std::uint64_t elf_max_file_bytes = std::uint64_t{512} << 20;
/// Caps on what is collected, so a file whose symbols all point at one long name cannot make the
/// reader allocate far more than the file's size.
inline constexpr std::uint64_t elf_max_exported_symbols = std::uint64_t{1} << 21;
inline constexpr std::uint64_t elf_min_name_byte_budget = std::uint64_t{64} << 20;

// The ELF constants used below (values from the System V gABI).
inline constexpr std::uint8_t elfclass32 = 1;
inline constexpr std::uint8_t elfclass64 = 2;
inline constexpr std::uint8_t elfdata2lsb = 1;
inline constexpr std::uint8_t elfdata2msb = 2;
inline constexpr std::uint8_t ev_current = 1;
inline constexpr std::uint32_t sht_strtab = 3;
inline constexpr std::uint32_t sht_dynsym = 11;
inline constexpr std::uint32_t pt_load = 1;
inline constexpr std::uint32_t pt_dynamic = 2;
inline constexpr std::uint64_t dt_null = 0;
inline constexpr std::uint64_t dt_hash = 4;
inline constexpr std::uint64_t dt_strtab = 5;
inline constexpr std::uint64_t dt_symtab = 6;
inline constexpr std::uint64_t dt_strsz = 10;
inline constexpr std::uint64_t dt_syment = 11;
inline constexpr std::uint64_t dt_gnu_hash = 0x6ffffef5;
inline constexpr std::uint16_t shn_undef = 0;
inline constexpr std::uint8_t stb_global = 1;
inline constexpr std::uint8_t stb_weak = 2;
inline constexpr std::uint8_t stb_gnu_unique = 10;
inline constexpr std::uint8_t stt_object = 1;
inline constexpr std::uint8_t stt_func = 2;
inline constexpr std::uint8_t stt_gnu_ifunc = 10;
inline constexpr std::uint8_t stv_default = 0;
inline constexpr std::uint8_t stv_protected = 3;
inline constexpr std::uint16_t em_alpha = 0x9026;

/// `a + b`, or nullopt if that overflows.
[[nodiscard]] inline std::optional<std::uint64_t> checked_add(std::uint64_t a,
                                                              std::uint64_t b) noexcept {
    if (a > std::numeric_limits<std::uint64_t>::max() - b) return std::nullopt;
    return a + b;
}

/// `a * b`, or nullopt if that overflows.
[[nodiscard]] inline std::optional<std::uint64_t> checked_mul(std::uint64_t a,
                                                              std::uint64_t b) noexcept {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::nullopt;
    return a * b;
}

[[nodiscard]] inline std::string to_dec(std::uint64_t value) {
    return std::to_string(value);
}

[[nodiscard]] inline std::string to_hex(std::uint64_t value) {
    std::array<char, 2 + 16> buffer{'0', 'x'};
    const auto end = std::to_chars(buffer.data() + 2, buffer.data() + buffer.size(), value, 16);
    return std::string(buffer.data(), end.ptr);
}

/// Bounds-checked reads of an ELF image in its own byte order and class. Every read says whether
/// it fitted; nothing here can touch memory outside `bytes`.
class elf_image {
public:
    elf_image(std::span<const unsigned char> bytes, bool big_endian, bool is64) noexcept
        : bytes_(bytes), big_endian_(big_endian), is64_(is64) {}

    [[nodiscard]] std::uint64_t size() const noexcept { return bytes_.size(); }
    [[nodiscard]] bool is64() const noexcept { return is64_; }
    /// Size of a class-sized field (Elf32_Addr/Elf32_Off versus Elf64_Addr/Elf64_Off).
    [[nodiscard]] unsigned word_size() const noexcept { return is64_ ? 8u : 4u; }

    /// Whether [offset, offset + length) lies inside the image.
    [[nodiscard]] bool fits(std::uint64_t offset, std::uint64_t length) const noexcept {
        return offset <= size() && length <= size() - offset;
    }

    [[nodiscard]] bool u8(std::uint64_t offset, std::uint8_t& out) const noexcept {
        std::uint64_t v = 0;
        if (!read_uint(offset, 1, v)) return false;
        out = static_cast<std::uint8_t>(v);
        return true;
    }
    [[nodiscard]] bool u16(std::uint64_t offset, std::uint16_t& out) const noexcept {
        std::uint64_t v = 0;
        if (!read_uint(offset, 2, v)) return false;
        out = static_cast<std::uint16_t>(v);
        return true;
    }
    [[nodiscard]] bool u32(std::uint64_t offset, std::uint32_t& out) const noexcept {
        std::uint64_t v = 0;
        if (!read_uint(offset, 4, v)) return false;
        out = static_cast<std::uint32_t>(v);
        return true;
    }
    [[nodiscard]] bool u64(std::uint64_t offset, std::uint64_t& out) const noexcept {
        return read_uint(offset, 8, out);
    }
    /// A class-sized field: 4 bytes in ELF32, 8 in ELF64.
    [[nodiscard]] bool word(std::uint64_t offset, std::uint64_t& out) const noexcept {
        return read_uint(offset, word_size(), out);
    }

    /// The bytes [offset, offset + length); only call after fits(offset, length).
    [[nodiscard]] const unsigned char* at(std::uint64_t offset) const noexcept {
        return bytes_.data() + static_cast<std::size_t>(offset);
    }

private:
    [[nodiscard]] bool read_uint(std::uint64_t offset, unsigned length,
                                 std::uint64_t& out) const noexcept {
        if (!fits(offset, length)) return false;
        const unsigned char* p = at(offset);
        std::uint64_t value = 0;
        for (unsigned i = 0; i < length; ++i) {
            const unsigned shift = 8 * (big_endian_ ? length - 1 - i : i);
            value |= std::uint64_t{p[i]} << shift;
        }
        out = value;
        return true;
    }

    std::span<const unsigned char> bytes_;
    bool big_endian_;
    bool is64_;
};

/// The parts of the ELF header the reader uses.
struct elf_header {
    std::uint16_t type = 0;
    std::uint16_t machine = 0;
    std::uint64_t phoff = 0;
    std::uint64_t shoff = 0;
    std::uint16_t phentsize = 0;
    std::uint16_t phnum = 0;
    std::uint16_t shentsize = 0;
    std::uint16_t shnum = 0;
};

/// Where the dynamic symbol table and its string table are, as file offsets; both ranges have
/// been checked to lie inside the image.
struct elf_symbol_table {
    std::uint64_t symbols_offset = 0;
    std::uint64_t symbol_count = 0;
    std::uint64_t symbol_entry_size = 0;
    std::uint64_t strings_offset = 0;
    std::uint64_t strings_size = 0;
};

/// Outcome of one way of finding the symbol table: `absent` lets the caller try the next way.
enum class elf_lookup { found, absent, failed };

/// Sizes of the fixed structures, per class.
[[nodiscard]] inline std::uint64_t elf_header_size(bool is64) noexcept {
    return is64 ? 64 : 52;
}
[[nodiscard]] inline std::uint64_t elf_shdr_size(bool is64) noexcept {
    return is64 ? 64 : 40;
}
[[nodiscard]] inline std::uint64_t elf_phdr_size(bool is64) noexcept {
    return is64 ? 56 : 32;
}
[[nodiscard]] inline std::uint64_t elf_sym_size(bool is64) noexcept {
    return is64 ? 24 : 16;
}
[[nodiscard]] inline std::uint64_t elf_dyn_size(bool is64) noexcept {
    return is64 ? 16 : 8;
}

/// Reads the header fields (the image has been checked to hold a whole header).
[[nodiscard]] inline elf_header read_header(const elf_image& image) noexcept {
    elf_header h;
    const bool is64 = image.is64();
    (void)image.u16(16, h.type);
    (void)image.u16(18, h.machine);
    (void)image.word(is64 ? 32 : 28, h.phoff);
    (void)image.word(is64 ? 40 : 32, h.shoff);
    (void)image.u16(is64 ? 54 : 42, h.phentsize);
    (void)image.u16(is64 ? 56 : 44, h.phnum);
    (void)image.u16(is64 ? 58 : 46, h.shentsize);
    (void)image.u16(is64 ? 60 : 48, h.shnum);
    return h;
}

/// One section header's fields that matter here.
struct elf_section {
    std::uint32_t type = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    std::uint32_t link = 0;
    std::uint64_t entry_size = 0;
};

[[nodiscard]] inline bool read_section(const elf_image& image, std::uint64_t at,
                                       elf_section& s) noexcept {
    if (image.is64()) {
        return image.u32(at + 4, s.type) && image.u64(at + 24, s.offset) &&
               image.u64(at + 32, s.size) && image.u32(at + 40, s.link) &&
               image.u64(at + 56, s.entry_size);
    }
    std::uint32_t offset = 0, size = 0, entry_size = 0;
    const bool ok = image.u32(at + 4, s.type) && image.u32(at + 16, offset) &&
                    image.u32(at + 20, size) && image.u32(at + 24, s.link) &&
                    image.u32(at + 36, entry_size);
    s.offset = offset;
    s.size = size;
    s.entry_size = entry_size;
    return ok;
}

/// Finds .dynsym through the section headers. `absent` if there are none or none is SHT_DYNSYM;
/// a section table that is there but broken is an error (no fallback), since the file is corrupt.
[[nodiscard]] inline elf_lookup find_by_sections(const elf_image& image, const elf_header& h,
                                                 elf_symbol_table& table, std::string& error) {
    if (h.shoff == 0) return elf_lookup::absent;
    if (h.shnum == 0 && h.shentsize == 0) return elf_lookup::absent;
    const std::uint64_t min_entry = elf_shdr_size(image.is64());
    if (h.shentsize < min_entry) {
        error = "corrupt: e_shentsize " + to_dec(h.shentsize) +
                " is smaller than a section header (" + to_dec(min_entry) + " bytes)";
        return elf_lookup::failed;
    }
    if (!image.fits(h.shoff, h.shentsize)) {
        error = "truncated: section headers past end of file";
        return elf_lookup::failed;
    }
    std::uint64_t count = h.shnum;
    if (count == 0) {
        // Extended numbering (more than 0xff00 sections): the count is section 0's sh_size.
        elf_section first;
        if (!read_section(image, h.shoff, first)) {
            error = "truncated: section headers past end of file";
            return elf_lookup::failed;
        }
        count = first.size;
        if (count == 0) return elf_lookup::absent;
    }
    const auto table_size = checked_mul(count, h.shentsize);
    if (!table_size || !image.fits(h.shoff, *table_size)) {
        error = "truncated: section headers past end of file (" + to_dec(count) + " headers at " +
                to_hex(h.shoff) + ")";
        return elf_lookup::failed;
    }
    // From here every header offset below shoff + table_size is in range, without overflow.
    for (std::uint64_t i = 0; i < count; ++i) {
        elf_section dynsym;
        if (!read_section(image, h.shoff + i * h.shentsize, dynsym)) {
            error = "truncated: section headers past end of file";
            return elf_lookup::failed;
        }
        if (dynsym.type != sht_dynsym) continue;

        const std::uint64_t min_sym = elf_sym_size(image.is64());
        if (dynsym.entry_size < min_sym) {
            error = "corrupt: .dynsym entry size " + to_dec(dynsym.entry_size) +
                    " (expected at least " + to_dec(min_sym) + ")";
            return elf_lookup::failed;
        }
        if (!image.fits(dynsym.offset, dynsym.size)) {
            error = "truncated: .dynsym past end of file";
            return elf_lookup::failed;
        }
        if (dynsym.link == 0 || dynsym.link >= count) {
            error = "corrupt: .dynsym sh_link " + to_dec(dynsym.link) +
                    " is not a valid section index (" + to_dec(count) + " sections)";
            return elf_lookup::failed;
        }
        elf_section strings;
        if (!read_section(image, h.shoff + std::uint64_t{dynsym.link} * h.shentsize, strings)) {
            error = "truncated: section headers past end of file";
            return elf_lookup::failed;
        }
        if (strings.type != sht_strtab) {
            error = "corrupt: .dynsym links to section " + to_dec(dynsym.link) +
                    ", which is not a string table (type " + to_dec(strings.type) + ")";
            return elf_lookup::failed;
        }
        if (!image.fits(strings.offset, strings.size)) {
            error = "truncated: .dynstr past end of file";
            return elf_lookup::failed;
        }
        table.symbols_offset = dynsym.offset;
        table.symbol_count = dynsym.size / dynsym.entry_size;
        table.symbol_entry_size = dynsym.entry_size;
        table.strings_offset = strings.offset;
        table.strings_size = strings.size;
        return elf_lookup::found;
    }
    return elf_lookup::absent;
}

/// A PT_LOAD segment's file-backed part, for translating DT_* addresses into file offsets.
struct elf_segment {
    std::uint64_t vaddr = 0;
    std::uint64_t offset = 0;
    std::uint64_t file_size = 0;
};

/// The file offset of the virtual range [address, address + length), if one PT_LOAD segment's
/// file data holds all of it and that lies inside the image.
[[nodiscard]] inline std::optional<std::uint64_t> map_address(
    const elf_image& image, const std::vector<elf_segment>& segments, std::uint64_t address,
    std::uint64_t length) noexcept {
    for (const elf_segment& s : segments) {
        if (address < s.vaddr) continue;
        const std::uint64_t delta = address - s.vaddr;
        if (delta > s.file_size || length > s.file_size - delta) continue;
        const auto offset = checked_add(s.offset, delta);
        if (offset && image.fits(*offset, length)) return offset;
    }
    return std::nullopt;
}

/// The number of dynamic symbols according to DT_HASH: its nchain word.
[[nodiscard]] inline bool count_by_hash(const elf_image& image, const elf_header& h,
                                        const std::vector<elf_segment>& segments,
                                        std::uint64_t address, std::uint64_t& count,
                                        std::string& error) {
    // 64-bit Alpha and s390x use 8-byte hash table entries; everyone else uses 4-byte ones.
    const bool wide = image.is64() && (h.machine == em_alpha || h.machine == em_s390);
    const std::uint64_t entry = wide ? 8 : 4;
    const auto at = map_address(image, segments, address, 2 * entry);
    if (!at) {
        error = "corrupt: DT_HASH " + to_hex(address) + " is outside the file's loaded segments";
        return false;
    }
    if (wide) return image.u64(*at + 8, count);
    std::uint32_t nchain = 0;
    if (!image.u32(*at + 4, nchain)) return false;
    count = nchain;
    return true;
}

/// The number of dynamic symbols according to DT_GNU_HASH: one past the last symbol of the chain
/// that starts at the highest bucket (symbols are sorted by bucket, chains end with bit 0 set).
[[nodiscard]] inline bool count_by_gnu_hash(const elf_image& image,
                                            const std::vector<elf_segment>& segments,
                                            std::uint64_t address, std::uint64_t& count,
                                            std::string& error) {
    const auto header = map_address(image, segments, address, 16);
    std::uint32_t nbuckets = 0, symoffset = 0, bloom_size = 0;
    if (!header || !image.u32(*header, nbuckets) || !image.u32(*header + 4, symoffset) ||
        !image.u32(*header + 8, bloom_size)) {
        error =
            "corrupt: DT_GNU_HASH " + to_hex(address) + " is outside the file's loaded segments";
        return false;
    }
    const auto header_end = checked_add(address, 16);  // mapped, so cannot overflow; checked anyway
    const auto bloom_bytes = checked_mul(bloom_size, image.word_size());
    const auto buckets_address =
        header_end && bloom_bytes ? checked_add(*header_end, *bloom_bytes) : std::nullopt;
    const auto buckets_bytes = checked_mul(nbuckets, 4);
    const auto buckets = buckets_address && buckets_bytes
                             ? map_address(image, segments, *buckets_address, *buckets_bytes)
                             : std::nullopt;
    if (!buckets) {
        error = "corrupt: DT_GNU_HASH buckets are outside the file's loaded segments";
        return false;
    }
    std::uint32_t last_bucket = 0;
    for (std::uint64_t i = 0; i < nbuckets; ++i) {
        std::uint32_t bucket = 0;
        if (!image.u32(*buckets + 4 * i, bucket)) return false;
        last_bucket = std::max(last_bucket, bucket);
    }
    if (last_bucket == 0) {  // no hashed symbols: only the ones below symoffset
        count = symoffset;
        return true;
    }
    if (last_bucket < symoffset) {
        error = "corrupt: DT_GNU_HASH bucket " + to_dec(last_bucket) + " is below symoffset " +
                to_dec(symoffset);
        return false;
    }
    const auto chain_start = checked_add(*buckets_address, *buckets_bytes);
    auto link = chain_start ? checked_mul(last_bucket - symoffset, 4) : std::nullopt;
    auto link_address = link ? checked_add(*chain_start, *link) : std::nullopt;
    // Each step reads 4 more bytes of a mapped segment, so the walk ends within the file's size.
    for (std::uint64_t index = last_bucket; link_address; ++index) {
        const auto at = map_address(image, segments, *link_address, 4);
        std::uint32_t hash = 0;
        if (!at || !image.u32(*at, hash)) break;
        if (hash & 1u) {
            count = index + 1;
            return true;
        }
        link_address = checked_add(*link_address, 4);
    }
    error = "corrupt: DT_GNU_HASH chain runs past the end of its segment";
    return false;
}

/// Finds the dynamic symbol table the way the dynamic loader does, through PT_DYNAMIC; used
/// when the section headers are missing or have no SHT_DYNSYM. `absent` if there is no
/// PT_DYNAMIC. (e_phnum == PN_XNUM is taken literally: the real count would be in a section
/// header, and this path runs when there are none.)
[[nodiscard]] inline elf_lookup find_by_dynamic(const elf_image& image, const elf_header& h,
                                                elf_symbol_table& table, std::string& error) {
    if (h.phoff == 0 || h.phnum == 0) return elf_lookup::absent;
    const bool is64 = image.is64();
    const std::uint64_t min_entry = elf_phdr_size(is64);
    if (h.phentsize < min_entry) {
        error = "corrupt: e_phentsize " + to_dec(h.phentsize) +
                " is smaller than a program header (" + to_dec(min_entry) + " bytes)";
        return elf_lookup::failed;
    }
    // phnum * phentsize is at most 0xffff * 0xffff: no overflow.
    if (!image.fits(h.phoff, std::uint64_t{h.phnum} * h.phentsize)) {
        error = "truncated: program headers past end of file";
        return elf_lookup::failed;
    }
    std::vector<elf_segment> loads;
    std::optional<elf_segment> dynamic;
    for (std::uint64_t i = 0; i < h.phnum; ++i) {
        const std::uint64_t at = h.phoff + i * h.phentsize;
        std::uint32_t type = 0;
        elf_segment s;
        bool ok = image.u32(at, type);
        if (is64) {
            ok = ok && image.u64(at + 8, s.offset) && image.u64(at + 16, s.vaddr) &&
                 image.u64(at + 32, s.file_size);
        } else {
            std::uint32_t offset = 0, vaddr = 0, file_size = 0;
            ok = ok && image.u32(at + 4, offset) && image.u32(at + 8, vaddr) &&
                 image.u32(at + 16, file_size);
            s = {vaddr, offset, file_size};
        }
        if (!ok) {
            error = "truncated: program headers past end of file";
            return elf_lookup::failed;
        }
        if (type == pt_load) loads.push_back(s);
        if (type == pt_dynamic && !dynamic) dynamic = s;
    }
    if (!dynamic) return elf_lookup::absent;
    if (!image.fits(dynamic->offset, dynamic->file_size)) {
        error = "truncated: PT_DYNAMIC past end of file";
        return elf_lookup::failed;
    }

    std::optional<std::uint64_t> symtab, strtab, strsz, syment, hash, gnu_hash;
    const std::uint64_t dyn_size = elf_dyn_size(is64);
    for (std::uint64_t i = 0; i < dynamic->file_size / dyn_size; ++i) {
        const std::uint64_t at = dynamic->offset + i * dyn_size;
        std::uint64_t tag = 0, value = 0;
        if (!image.word(at, tag) || !image.word(at + image.word_size(), value)) break;
        if (tag == dt_null) break;
        auto remember = [&](std::optional<std::uint64_t>& slot) {
            if (!slot) slot = value;  // the first of duplicated tags wins
        };
        switch (tag) {
            case dt_symtab:
                remember(symtab);
                break;
            case dt_strtab:
                remember(strtab);
                break;
            case dt_strsz:
                remember(strsz);
                break;
            case dt_syment:
                remember(syment);
                break;
            case dt_hash:
                remember(hash);
                break;
            case dt_gnu_hash:
                remember(gnu_hash);
                break;
            default:
                break;
        }
    }
    if (!symtab || !strtab || !strsz) {
        error =
            "no .dynsym section, and the dynamic section lacks DT_SYMTAB, DT_STRTAB or "
            "DT_STRSZ; cannot list exports";
        return elf_lookup::failed;
    }
    const std::uint64_t min_sym = elf_sym_size(is64);
    const std::uint64_t entry_size = syment.value_or(min_sym);
    if (entry_size < min_sym) {
        error = "corrupt: DT_SYMENT " + to_dec(entry_size) + " (expected at least " +
                to_dec(min_sym) + ")";
        return elf_lookup::failed;
    }
    std::uint64_t count = 0;
    if (hash) {
        if (!count_by_hash(image, h, loads, *hash, count, error)) return elf_lookup::failed;
    } else if (gnu_hash) {
        if (!count_by_gnu_hash(image, loads, *gnu_hash, count, error)) return elf_lookup::failed;
    } else {
        error = "no .dynsym section, and no DT_HASH or DT_GNU_HASH to count dynamic symbols by";
        return elf_lookup::failed;
    }
    const auto symbols_bytes = checked_mul(count, entry_size);
    const auto symbols =
        symbols_bytes ? map_address(image, loads, *symtab, *symbols_bytes) : std::nullopt;
    if (!symbols) {
        error = "truncated: dynamic symbol table (" + to_dec(count) + " symbols at " +
                to_hex(*symtab) + ") is outside the file's loaded segments";
        return elf_lookup::failed;
    }
    const auto strings = map_address(image, loads, *strtab, *strsz);
    if (!strings) {
        error = "truncated: dynamic string table (" + to_dec(*strsz) + " bytes at " +
                to_hex(*strtab) + ") is outside the file's loaded segments";
        return elf_lookup::failed;
    }
    table = {*symbols, count, entry_size, *strings, *strsz};
    return elf_lookup::found;
}

/// Sorts the table's exported functions and objects into `result`.
[[nodiscard]] inline bool collect_symbols(const elf_image& image, const elf_symbol_table& table,
                                          elf_exports_result& result) {
    const bool is64 = image.is64();
    const std::uint64_t name_budget = std::max(elf_min_name_byte_budget, image.size());
    std::uint64_t name_bytes = 0;
    for (std::uint64_t i = 0; i < table.symbol_count; ++i) {
        // In range: the table [offset, offset + count * entry_size) was checked to fit.
        const std::uint64_t at = table.symbols_offset + i * table.symbol_entry_size;
        std::uint32_t name = 0;
        std::uint8_t info = 0, other = 0;
        std::uint16_t section = 0;
        const bool ok = is64 ? image.u32(at, name) && image.u8(at + 4, info) &&
                                   image.u8(at + 5, other) && image.u16(at + 6, section)
                             : image.u32(at, name) && image.u8(at + 12, info) &&
                                   image.u8(at + 13, other) && image.u16(at + 14, section);
        if (!ok) {
            result.error = "truncated: symbol " + to_dec(i) + " past end of file";
            return false;
        }
        const auto bind = static_cast<std::uint8_t>(info >> 4);
        const auto type = static_cast<std::uint8_t>(info & 0xf);
        const auto visibility = static_cast<std::uint8_t>(other & 0x3);
        if (section == shn_undef) continue;
        if (bind != stb_global && bind != stb_weak && bind != stb_gnu_unique) continue;
        if (visibility != stv_default && visibility != stv_protected) continue;
        const bool is_function = type == stt_func || type == stt_gnu_ifunc;
        if (!is_function && type != stt_object) continue;
        if (name == 0) continue;  // nameless: nothing anyone could look up

        if (name >= table.strings_size) {
            result.error = "corrupt: symbol " + to_dec(i) + " name offset " + to_dec(name) +
                           " is outside the string table (" + to_dec(table.strings_size) +
                           " bytes)";
            return false;
        }
        const unsigned char* first = image.at(table.strings_offset + name);
        const auto available = static_cast<std::size_t>(table.strings_size - name);
        const void* nul = std::memchr(first, 0, available);
        if (nul == nullptr) {
            result.error = "corrupt: symbol " + to_dec(i) +
                           " name is not NUL-terminated within the string table";
            return false;
        }
        const auto length =
            static_cast<std::size_t>(static_cast<const unsigned char*>(nul) - first);
        name_bytes += length;  // stops just past the budget, so far from overflowing
        if (result.functions.size() + result.objects.size() >= elf_max_exported_symbols ||
            name_bytes > name_budget) {
            result.error = "too many exported symbols (more than " +
                           to_dec(elf_max_exported_symbols) + " or " + to_dec(name_budget) +
                           " bytes of names)";
            return false;
        }
        (is_function ? result.functions : result.objects)
            .emplace_back(reinterpret_cast<const char*>(first), length);
    }
    return true;
}

/// The whole parse; on failure sets `result.error` and returns false.
[[nodiscard]] inline bool parse_elf(std::span<const unsigned char> bytes,
                                    elf_exports_result& result) {
    static constexpr std::array<unsigned char, 4> magic{0x7f, 'E', 'L', 'F'};
    if (bytes.size() < magic.size()) {
        result.error = "not an ELF file (shorter than the 4-byte magic)";
        return false;
    }
    if (!std::equal(magic.begin(), magic.end(), bytes.begin())) {
        result.error = "not an ELF file (bad magic)";
        return false;
    }
    if (bytes.size() < 16) {
        result.error = "truncated: file shorter than the ELF identification (16 bytes)";
        return false;
    }
    const std::uint8_t elf_class = bytes[4], data = bytes[5], version = bytes[6];
    if (elf_class != elfclass32 && elf_class != elfclass64) {
        result.error =
            "unsupported ELF class " + to_dec(elf_class) + " (expected 1 = 32-bit or 2 = 64-bit)";
        return false;
    }
    if (data != elfdata2lsb && data != elfdata2msb) {
        result.error = "unsupported ELF data encoding " + to_dec(data) +
                       " (expected 1 = little-endian or 2 = big-endian)";
        return false;
    }
    if (version != ev_current) {
        result.error = "unsupported ELF version " + to_dec(version) + " (expected 1)";
        return false;
    }
    const bool is64 = elf_class == elfclass64;
    const elf_image image(bytes, data == elfdata2msb, is64);
    if (image.size() < elf_header_size(is64)) {
        result.error = "truncated: file shorter than the ELF" + std::string(is64 ? "64" : "32") +
                       " header (" + to_dec(image.size()) + " of " + to_dec(elf_header_size(is64)) +
                       " bytes)";
        return false;
    }
    const elf_header header = read_header(image);
    result.machine = header.machine;
    result.type = header.type;

    elf_symbol_table table;
    elf_lookup lookup = find_by_sections(image, header, table, result.error);
    if (lookup == elf_lookup::absent) {
        const bool had_sections = header.shoff != 0;
        lookup = find_by_dynamic(image, header, table, result.error);
        if (lookup == elf_lookup::absent) {
            result.error = had_sections ? "no dynamic symbol table (.dynsym)"
                                        : "no section headers and no PT_DYNAMIC segment; "
                                          "cannot list exports";
        }
    }
    if (lookup != elf_lookup::found) return false;
    return collect_symbols(image, table, result);
}

}  // namespace detail

inline elf_exports_result read_elf_exports_from_bytes(
    std::span<const unsigned char> bytes) noexcept {
    elf_exports_result result;
    try {
        result.ok = detail::parse_elf(bytes, result);
        if (!result.ok) {
            result.functions.clear();
            result.objects.clear();
        }
    } catch (...) {  // std::bad_alloc, in practice
        result = elf_exports_result{};
        try {
            result.error = "out of memory while listing the exports";
        } catch (...) {
        }
    }
    return result;
}

inline elf_exports_result read_elf_exports(const std::filesystem::path& file) noexcept {
    elf_exports_result result;
    try {
        std::error_code ec;
        const auto status = std::filesystem::status(file, ec);
        if (ec) {
            result.error = "cannot read file: " + ec.message();
            return result;
        }
        // Not a FIFO or device: reading one could block or never end.
        if (!std::filesystem::is_regular_file(status)) {
            result.error = "not a regular file";
            return result;
        }
        const std::uintmax_t size = std::filesystem::file_size(file, ec);
        if (ec) {
            result.error = "cannot read file: " + ec.message();
            return result;
        }
        if (size > detail::elf_max_file_bytes) {
            result.error = "file too large (" + detail::to_dec(size) + " bytes; the limit is " +
                           detail::to_dec(detail::elf_max_file_bytes) + ")";
            return result;
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            result.error = "cannot open file";
            return result;
        }
        std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
        // Reads at most the size seen above, even if the file grows meanwhile.
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
        if (static_cast<std::uintmax_t>(in.gcount()) != size) {
            result.error = "cannot read file: it is shorter than its reported size";
            return result;
        }
        return read_elf_exports_from_bytes(bytes);
    } catch (const std::bad_alloc&) {
        result = elf_exports_result{};
        try {
            result.error = "out of memory while reading the file";
        } catch (...) {
        }
    } catch (const std::exception& e) {  // std::filesystem::filesystem_error, std::ios::failure
        result = elf_exports_result{};
        try {
            result.error = std::string("cannot read file: ") + e.what();
        } catch (...) {
        }
    }
    return result;
}

}  // namespace polyplug::tools
