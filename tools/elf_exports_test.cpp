// SPDX-License-Identifier: MIT
/// @file elf_exports_test.cpp
/// Tests for tools/elf_exports.hpp, without Catch2 so it builds on its own:
///
///     elf_exports_test <plugin.so> <not_a_plugin_file>
///
/// argv[1] must be a shared object, built for this machine, that defines polyplug_abi_version
/// and polyplug_init; argv[2] any file that is not ELF (a text file). Besides reading those two,
/// the test truncates and corrupts argv[1]'s bytes in memory (each variant in an exactly sized
/// heap buffer, so AddressSanitizer sees any read past its end), and builds small ELF32/ELF64,
/// little/big-endian images by hand to check the byte order and class decoding and the
/// PT_DYNAMIC fallback. Exits non-zero, after printing each failure, if any check fails.
#include "elf_exports.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace tools = polyplug::tools;
using bytes_t = std::vector<unsigned char>;

int checks_passed = 0;
int checks_failed = 0;

/// Records one check; prints where and what when it fails.
void record(bool ok, const char* file, int line, const std::string& what) {
    if (ok) {
        ++checks_passed;
        return;
    }
    ++checks_failed;
    std::printf("%s:%d: FAILED: %s\n", file, line, what.c_str());
}

// A macro, not std::source_location: clang 14 with libstdc++ has no <source_location>.
#define CHECK(cond, what) record(static_cast<bool>(cond), __FILE__, __LINE__, (what))

/// A result in one line; long lists are cut short (a large library exports thousands).
std::string describe(const tools::elf_exports_result& r) {
    std::string s = r.ok ? "ok" : "error \"" + r.error + "\"";
    auto list = [&s](const char* label, const std::vector<std::string>& names) {
        s += label;
        for (std::size_t i = 0; i < names.size() && i < 12; ++i) s += " " + names[i];
        if (names.size() > 12) s += " ... (" + std::to_string(names.size()) + " in all)";
    };
    list("; functions:", r.functions);
    list("; objects:", r.objects);
    return s;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

/// Invariants every result must satisfy, whatever the input.
bool well_formed(const tools::elf_exports_result& r) {
    return r.ok ? r.error.empty() : !r.error.empty() && r.functions.empty() && r.objects.empty();
}

/// Whether a parse of damaged input stayed sane: an error, or only names the intact file has.
bool subset_or_error(const tools::elf_exports_result& r, const std::set<std::string>& functions,
                     const std::set<std::string>& objects) {
    if (!well_formed(r)) return false;
    if (!r.ok) return true;
    for (const auto& f : r.functions)
        if (!functions.count(f)) return false;
    for (const auto& o : r.objects)
        if (!objects.count(o)) return false;
    return true;
}

bool read_file(const std::filesystem::path& path, bytes_t& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

/// Writes little- or big-endian fields into a growing buffer.
class writer {
public:
    writer(bool big_endian, bool is64) : big_endian_(big_endian), is64_(is64) {}

    void put(std::uint64_t offset, std::uint64_t value, unsigned length) {
        if (bytes.size() < offset + length) bytes.resize(offset + length);
        for (unsigned i = 0; i < length; ++i) {
            const unsigned shift = 8 * (big_endian_ ? length - 1 - i : i);
            bytes[offset + i] = static_cast<unsigned char>(value >> shift);
        }
    }
    void u8(std::uint64_t offset, std::uint64_t value) { put(offset, value, 1); }
    void u16(std::uint64_t offset, std::uint64_t value) { put(offset, value, 2); }
    void u32(std::uint64_t offset, std::uint64_t value) { put(offset, value, 4); }
    void word(std::uint64_t offset, std::uint64_t value) { put(offset, value, is64_ ? 8 : 4); }
    void text(std::uint64_t offset, std::string_view s) {
        for (std::size_t i = 0; i < s.size(); ++i) u8(offset + i, static_cast<unsigned char>(s[i]));
    }

    bytes_t bytes;

private:
    bool big_endian_;
    bool is64_;
};

/// How a hand-built image lets the reader find its symbols.
enum class lookup { sections, dt_hash, dt_gnu_hash };

struct image_options {
    bool is64 = false;
    bool big_endian = true;
    lookup via = lookup::sections;
    /// e_shnum = 0 with the count in section 0's sh_size, as for > 0xff00 sections.
    bool extended_shnum = false;
    /// The string table's size stops one byte short of the last name's NUL (the byte after
    /// it in the file is still 0, so a reader that looks past the table would not notice).
    bool unterminated_last_name = false;
};

struct test_symbol {
    std::string name;
    unsigned bind;        // STB_*
    unsigned type;        // STT_*
    unsigned visibility;  // STV_*
    unsigned section;     // st_shndx
};

constexpr unsigned stb_local = 0, stb_global = 1, stb_weak = 2;
constexpr unsigned stt_object = 1, stt_func = 2, stt_tls = 6, stt_gnu_ifunc = 10;
constexpr unsigned stv_default = 0, stv_hidden = 2, stv_protected = 3;
constexpr unsigned shn_abs = 0xfff1;
constexpr std::uint16_t machine_for_images = 20;  // EM_PPC: anything but the host

/// The symbols of the hand-built images; the last one must stay a function (see
/// image_options::unterminated_last_name).
const std::vector<test_symbol>& image_symbols() {
    static const std::vector<test_symbol> symbols{
        {"polyplug_init", stb_global, stt_func, stv_default, 7},
        {"undefined_fn", stb_global, stt_func, stv_default, 0},
        {"hidden_fn", stb_global, stt_func, stv_hidden, 7},
        {"local_fn", stb_local, stt_func, stv_default, 7},
        {"weak_fn", stb_weak, stt_func, stv_default, 7},
        {"protected_fn", stb_global, stt_func, stv_protected, 7},
        {"ifunc_fn", stb_global, stt_gnu_ifunc, stv_default, 7},
        {"an_object", stb_global, stt_object, stv_default, 8},
        {"abs_object", stb_global, stt_object, stv_default, shn_abs},
        {"hidden_object", stb_global, stt_object, stv_hidden, 8},
        {"tls_var", stb_global, stt_tls, stv_default, 9},
        {"polyplug_abi_version", stb_global, stt_func, stv_default, 7},
    };
    return symbols;
}
const std::vector<std::string> image_functions{"polyplug_init", "weak_fn", "protected_fn",
                                               "ifunc_fn", "polyplug_abi_version"};
const std::vector<std::string> image_objects{"an_object", "abs_object"};

/// Where build_image() put things (file offsets), so tests can corrupt them.
struct image_layout {
    std::uint64_t phoff = 0, phentsize = 0, shoff = 0, shentsize = 0;
    std::uint64_t strtab = 0, symtab = 0, symsize = 0, hash = 0, hash_end = 0;
    std::uint64_t dynamic = 0, dynsize = 0;
};

std::uint64_t align8(std::uint64_t n) {
    return (n + 7) & ~std::uint64_t{7};
}

/// Builds an ET_DYN image: header, a PT_LOAD covering the whole file at vaddr 0x10000 plus
/// PT_DYNAMIC, .dynstr, .dynsym (null symbol + image_symbols()), DT_HASH or DT_GNU_HASH, the
/// dynamic section, and (for lookup::sections) section headers: null, .dynsym, .dynstr.
bytes_t build_image(const image_options& o, image_layout* layout = nullptr) {
    const auto& symbols = image_symbols();
    writer w(o.big_endian, o.is64);
    const std::uint64_t ehsize = o.is64 ? 64 : 52, phentsize = o.is64 ? 56 : 32;
    const std::uint64_t shentsize = o.is64 ? 64 : 40, symsize = o.is64 ? 24 : 16;
    const std::uint64_t dynsize = o.is64 ? 16 : 8, wordsize = o.is64 ? 8 : 4;
    const std::uint64_t base = 0x10000;
    const std::uint64_t nsyms = symbols.size() + 1;

    const std::uint64_t phoff = ehsize;
    const std::uint64_t strtab = phoff + 2 * phentsize;
    std::string strings(1, '\0');
    std::vector<std::uint64_t> name_offsets;
    for (const auto& s : symbols) {
        name_offsets.push_back(strings.size());
        strings += s.name;
        strings += '\0';
    }
    const std::uint64_t strsz = strings.size() - (o.unterminated_last_name ? 1 : 0);
    w.text(strtab, strings);

    const std::uint64_t symtab = align8(strtab + strings.size());
    for (std::uint64_t i = 1; i < nsyms; ++i) {
        const test_symbol& s = symbols[i - 1];
        const std::uint64_t at = symtab + i * symsize;
        const unsigned info = (s.bind << 4) | s.type;
        w.u32(at, name_offsets[i - 1]);
        if (o.is64) {
            w.u8(at + 4, info);
            w.u8(at + 5, s.visibility);
            w.u16(at + 6, s.section);
            w.put(at + 8, 0x1000 + i * 16, 8);  // st_value
            w.put(at + 16, 16, 8);              // st_size
        } else {
            w.u32(at + 4, 0x1000 + i * 16);
            w.u32(at + 8, 16);
            w.u8(at + 12, info);
            w.u8(at + 13, s.visibility);
            w.u16(at + 14, s.section);
        }
    }

    const std::uint64_t hash = align8(symtab + nsyms * symsize);
    std::uint64_t hash_end = hash;
    if (o.via == lookup::dt_gnu_hash) {
        // nbuckets 2, symoffset 1, one bloom word. Bucket 0 holds symbol 1 alone; bucket 1 holds
        // symbols 2..n-1, so the count comes from walking the last bucket's chain to its end.
        w.u32(hash, 2);
        w.u32(hash + 4, 1);
        w.u32(hash + 8, 1);
        w.u32(hash + 12, 6);
        w.word(hash + 16, ~std::uint64_t{0});
        const std::uint64_t buckets = hash + 16 + wordsize;
        w.u32(buckets, 1);
        w.u32(buckets + 4, 2);
        const std::uint64_t chain = buckets + 8;
        for (std::uint64_t i = 1; i < nsyms; ++i) {
            const bool last_in_bucket = i == 1 || i == nsyms - 1;
            w.u32(chain + (i - 1) * 4, ((0x1234 * i) << 1) | (last_in_bucket ? 1 : 0));
        }
        hash_end = chain + (nsyms - 1) * 4;
    } else {
        // nbucket 1, nchain nsyms; bucket 0 -> 1 -> 2 ... -> nsyms-1 -> 0.
        w.u32(hash, 1);
        w.u32(hash + 4, nsyms);
        w.u32(hash + 8, 1);
        for (std::uint64_t i = 0; i < nsyms; ++i)
            w.u32(hash + 12 + i * 4, i == 0 || i + 1 == nsyms ? 0 : i + 1);
        hash_end = hash + 12 + nsyms * 4;
    }

    const std::uint64_t dynamic = align8(hash_end);
    const std::uint64_t hash_tag = o.via == lookup::dt_gnu_hash ? 0x6ffffef5 : 4;
    const std::uint64_t tags[][2] = {{hash_tag, base + hash}, {5, base + strtab},
                                     {6, base + symtab},      {10, strsz},
                                     {11, symsize},           {0, 0}};
    std::uint64_t at = dynamic;
    for (const auto& tag : tags) {
        w.word(at, tag[0]);
        w.word(at + wordsize, tag[1]);
        at += dynsize;
    }
    const std::uint64_t dynamic_size = at - dynamic;

    const std::uint64_t shoff = align8(at);
    const bool sections = o.via == lookup::sections;
    const std::uint64_t total = sections ? shoff + 3 * shentsize : shoff;
    if (sections) {
        // Section 1: .dynsym, linked to section 2: .dynstr. (No section names: not needed.)
        const std::uint64_t dynsym_at = shoff + shentsize, dynstr_at = shoff + 2 * shentsize;
        auto section = [&](std::uint64_t header, std::uint64_t type, std::uint64_t offset,
                           std::uint64_t size, std::uint64_t link, std::uint64_t entsize) {
            w.u32(header + 4, type);
            if (o.is64) {
                w.put(header + 16, base + offset, 8);
                w.put(header + 24, offset, 8);
                w.put(header + 32, size, 8);
                w.u32(header + 40, link);
                w.put(header + 56, entsize, 8);
            } else {
                w.u32(header + 12, base + offset);
                w.u32(header + 16, offset);
                w.u32(header + 20, size);
                w.u32(header + 24, link);
                w.u32(header + 36, entsize);
            }
        };
        section(shoff, 0, 0, o.extended_shnum ? 3 : 0, 0, 0);
        section(dynsym_at, 11, symtab, nsyms * symsize, 2, symsize);
        section(dynstr_at, 3, strtab, strsz, 0, 0);
    }
    w.put(total - 1, 0, 1);

    // ELF header.
    w.u8(0, 0x7f);
    w.text(1, "ELF");
    w.u8(4, o.is64 ? 2 : 1);
    w.u8(5, o.big_endian ? 2 : 1);
    w.u8(6, 1);
    w.u16(16, 3);  // ET_DYN
    w.u16(18, machine_for_images);
    w.u32(20, 1);
    w.word(o.is64 ? 32 : 28, phoff);
    w.word(o.is64 ? 40 : 32, sections ? shoff : 0);
    w.u16(o.is64 ? 52 : 40, ehsize);
    w.u16(o.is64 ? 54 : 42, phentsize);
    w.u16(o.is64 ? 56 : 44, 2);
    w.u16(o.is64 ? 58 : 46, sections ? shentsize : 0);
    w.u16(o.is64 ? 60 : 48, sections && !o.extended_shnum ? 3 : 0);

    // Program headers: PT_LOAD over the whole file, PT_DYNAMIC.
    auto segment = [&](std::uint64_t header, std::uint64_t type, std::uint64_t offset,
                       std::uint64_t size) {
        w.u32(header, type);
        if (o.is64) {
            w.put(header + 8, offset, 8);
            w.put(header + 16, base + offset, 8);
            w.put(header + 24, base + offset, 8);
            w.put(header + 32, size, 8);
            w.put(header + 40, size, 8);
        } else {
            w.u32(header + 4, offset);
            w.u32(header + 8, base + offset);
            w.u32(header + 12, base + offset);
            w.u32(header + 16, size);
            w.u32(header + 20, size);
        }
    };
    segment(phoff, 1, 0, total);
    segment(phoff + phentsize, 2, dynamic, dynamic_size);
    if (layout) {
        *layout = {phoff,   phentsize, shoff,    shentsize, strtab, symtab,
                   symsize, hash,      hash_end, dynamic,   dynsize};
    }
    return std::move(w.bytes);
}

std::string image_name(const image_options& o) {
    std::string s = o.is64 ? "ELF64" : "ELF32";
    s += o.big_endian ? " big-endian" : " little-endian";
    s += o.via == lookup::sections  ? " via sections"
         : o.via == lookup::dt_hash ? " via DT_HASH"
                                    : " via DT_GNU_HASH";
    if (o.extended_shnum) s += " (extended e_shnum)";
    if (o.unterminated_last_name) s += " (unterminated name)";
    return s;
}

using test_clock = std::chrono::steady_clock;

/// Whether a budgeted loop should stop: past its deadline, having done at least a few items.
bool out_of_time(std::size_t done, test_clock::time_point deadline) {
    return done >= 16 && test_clock::now() >= deadline;
}

/// Parses every prefix of `bytes` whose length is in `lengths` (in order, until `deadline`),
/// each from an exactly sized copy. Returns how many it parsed.
std::size_t check_truncations(const bytes_t& bytes, const std::vector<std::size_t>& lengths,
                              const std::set<std::string>& functions,
                              const std::set<std::string>& objects, const std::string& what,
                              test_clock::time_point deadline = test_clock::time_point::max()) {
    int bad = 0;
    std::size_t first_bad = 0, done = 0;
    for (std::size_t length : lengths) {
        if (out_of_time(done, deadline)) break;
        ++done;
        if (length > bytes.size()) continue;
        const bytes_t cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
        const auto r = tools::read_elf_exports_from_bytes(cut);
        const bool whole = length == bytes.size();
        if (!subset_or_error(r, functions, objects) || (whole && !r.ok)) {
            if (bad++ == 0) first_bad = length;
        }
    }
    CHECK(bad == 0, what + ": " + std::to_string(bad) +
                        " truncations misbehaved, first at length " + std::to_string(first_bad));
    return done;
}

/// Sets the byte at each position in `positions` (in order, until `deadline`) to each of a few
/// values, parsing each variant in place (the buffer is exactly sized), then restores it.
/// Returns how many positions it tried.
std::size_t check_flips(bytes_t bytes, const std::vector<std::size_t>& positions,
                        const std::string& what,
                        test_clock::time_point deadline = test_clock::time_point::max()) {
    int bad = 0, parses = 0;
    std::size_t first_bad = 0, done = 0;
    for (std::size_t pos : positions) {
        if (out_of_time(done, deadline)) break;
        ++done;
        if (pos >= bytes.size()) continue;
        const unsigned char original = bytes[pos];
        const unsigned char values[] = {0x00,
                                        0xff,
                                        0x7f,
                                        0x80,
                                        static_cast<unsigned char>(original ^ 0x01),
                                        static_cast<unsigned char>(original ^ 0x10),
                                        static_cast<unsigned char>(original + 1),
                                        static_cast<unsigned char>(original - 1)};
        for (unsigned char v : values) {
            bytes[pos] = v;
            const auto r = tools::read_elf_exports_from_bytes(bytes);
            ++parses;
            // A flipped byte can rename a symbol, so only the invariants are checked here.
            if (!well_formed(r) && bad++ == 0) first_bad = pos;
        }
        bytes[pos] = original;
    }
    CHECK(bad == 0, what + ": " + std::to_string(bad) + " of " + std::to_string(parses) +
                        " byte flips misbehaved, first at offset " + std::to_string(first_bad));
    return done;
}

std::vector<std::size_t> all_positions(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

/// Hand-built images in all four class/byte-order combinations and all three lookups.
void test_built_images() {
    const std::set<std::string> functions(image_functions.begin(), image_functions.end());
    const std::set<std::string> objects(image_objects.begin(), image_objects.end());
    for (bool is64 : {false, true}) {
        for (bool big : {true, false}) {
            for (lookup via : {lookup::sections, lookup::dt_hash, lookup::dt_gnu_hash}) {
                image_options o;
                o.is64 = is64;
                o.big_endian = big;
                o.via = via;
                const std::string name = image_name(o);
                const bytes_t image = build_image(o);
                const auto r = tools::read_elf_exports_from_bytes(image);
                CHECK(r.ok, name + ": " + describe(r));
                CHECK(r.functions == image_functions, name + ": functions: " + describe(r));
                CHECK(r.objects == image_objects, name + ": objects: " + describe(r));
                CHECK(r.machine == machine_for_images, name + ": e_machine");
                CHECK(r.type == 3, name + ": e_type");
                CHECK(tools::exports_function(r, "polyplug_init"), name + ": polyplug_init");
                CHECK(!tools::exports_function(r, "hidden_fn"), name + ": hidden_fn");

                check_truncations(image, all_positions(image.size() + 1), functions, objects, name);
                check_flips(image, all_positions(image.size()), name);

                if (via != lookup::dt_hash) {
                    o.unterminated_last_name = true;
                    const auto u = tools::read_elf_exports_from_bytes(build_image(o));
                    CHECK(!u.ok && contains(u.error, "NUL"), image_name(o) + ": " + describe(u));
                }
                if (via == lookup::sections) {
                    o.unterminated_last_name = false;
                    o.extended_shnum = true;
                    const auto e = tools::read_elf_exports_from_bytes(build_image(o));
                    CHECK(e.ok && e.functions == image_functions,
                          image_name(o) + ": " + describe(e));
                }
            }
        }
    }

    // The minimal case the brief asks for, spelled out: ELF32 big-endian, .dynsym via sections.
    image_options o;
    const auto r = tools::read_elf_exports_from_bytes(build_image(o));
    CHECK(r.ok && tools::exports_function(r, "polyplug_init"),
          "ELF32 big-endian image: polyplug_init found: " + describe(r));
}

/// Overwrites `length` bytes at `offset` of an image built with `o`.
void patch(bytes_t& bytes, const image_options& o, std::uint64_t offset, std::uint64_t value,
           unsigned length) {
    writer w(o.big_endian, o.is64);
    w.bytes = std::move(bytes);
    w.put(offset, value, length);
    bytes = std::move(w.bytes);
}

/// Specific corruptions of the hand-built images and the messages they must give. Several of
/// these would read nothing out of bounds even unchecked (every read is bounds-checked anyway);
/// they check that each structure-level check exists and says what is wrong.
void test_corrupt_images() {
    for (bool is64 : {false, true}) {
        for (bool big : {true, false}) {
            image_options o;
            o.is64 = is64;
            o.big_endian = big;
            image_layout l;
            const unsigned word = is64 ? 8 : 4;
            auto expect = [&](const bytes_t& image, std::string_view message,
                              const std::string& what) {
                const auto r = tools::read_elf_exports_from_bytes(image);
                CHECK(!r.ok && contains(r.error, message),
                      image_name(o) + ", " + what + ": expected \"" + std::string(message) +
                          "\", got " + describe(r));
            };

            o.via = lookup::sections;
            const bytes_t sections = build_image(o, &l);
            const std::uint64_t dynsym = l.shoff + l.shentsize, dynstr = l.shoff + 2 * l.shentsize;
            const std::uint64_t sh_offset = is64 ? 24 : 16, sh_size = is64 ? 32 : 20;
            const std::uint64_t sh_link = is64 ? 40 : 24, sh_entsize = is64 ? 56 : 36;
            bytes_t b = sections;
            patch(b, o, dynsym + sh_entsize, 8, word);
            expect(b, "entry size", ".dynsym sh_entsize 8");
            b = sections;
            patch(b, o, dynsym + sh_size, 2 * sections.size(), word);
            expect(b, "truncated: .dynsym", ".dynsym sh_size past the end");
            b = sections;
            patch(b, o, is64 ? 60 : 48, 200, 2);
            expect(b, "truncated: section headers", "e_shnum 200");
            b = sections;
            patch(b, o, is64 ? 58 : 46, 10, 2);
            expect(b, "e_shentsize", "e_shentsize 10");
            for (std::uint64_t link : {0, 3, 0xffff}) {
                b = sections;
                patch(b, o, dynsym + sh_link, link, 4);
                expect(b, "sh_link", ".dynsym sh_link " + std::to_string(link));
            }
            b = sections;
            patch(b, o, dynsym + sh_link, 1, 4);
            expect(b, "not a string table", ".dynsym linked to itself");
            b = sections;
            patch(b, o, dynstr + sh_offset, sections.size() - 2, word);
            expect(b, "truncated: .dynstr", ".dynstr past the end");
            b = sections;
            patch(b, o, l.symtab + l.symsize, 0x7fff, 4);  // symbol 1's st_name
            expect(b, "outside the string table", "st_name past the string table");

            o.via = lookup::dt_gnu_hash;
            const bytes_t gnu = build_image(o, &l);
            const std::uint64_t p_filesz = is64 ? 32 : 16;
            b = gnu;
            // The PT_LOAD ends 2 bytes before the GNU hash chain does: the last chain word
            // straddles the segment's end, though the file has its bytes.
            patch(b, o, l.phoff + p_filesz, l.hash_end - 2, word);
            expect(b, "DT_GNU_HASH chain", "PT_LOAD cut inside the GNU hash chain");
            b = gnu;
            patch(b, o, l.phoff + p_filesz, l.symtab + 3, word);
            expect(b, "loaded segments", "PT_LOAD cut inside the symbol table");
            b = gnu;
            patch(b, o, is64 ? 54 : 42, 8, 2);
            expect(b, "e_phentsize", "e_phentsize 8");
            b = gnu;
            patch(b, o, l.phoff + l.phentsize + p_filesz, 4 * gnu.size(), word);
            expect(b, "truncated: PT_DYNAMIC", "PT_DYNAMIC p_filesz past the end");
            b = gnu;
            patch(b, o, l.dynamic + 3 * l.dynsize, 0x7fff, word);  // DT_STRSZ -> unknown tag
            expect(b, "lacks DT_SYMTAB, DT_STRTAB or DT_STRSZ", "no DT_STRSZ");
            b = gnu;
            patch(b, o, l.hash + 4, 5, 4);  // symoffset 5 > the buckets' first symbols
            expect(b, "below symoffset", "DT_GNU_HASH symoffset 5");
            b = gnu;
            patch(b, o, l.dynamic, 0x7fff, word);  // DT_GNU_HASH -> unknown tag
            expect(b, "no DT_HASH or DT_GNU_HASH", "no hash table");
            b = gnu;
            patch(b, o, l.dynamic + 3 * l.dynsize + word, 0x7fffffff, word);  // DT_STRSZ huge
            expect(b, "dynamic string table", "DT_STRSZ past the end");

            o.via = lookup::dt_hash;
            const bytes_t sysv = build_image(o, &l);
            b = sysv;
            patch(b, o, l.hash + 4, 0xffffffff, 4);  // nchain
            expect(b, "dynamic symbol table", "DT_HASH nchain 0xffffffff");
            b = sysv;
            patch(b, o, l.dynamic + 2 * l.dynsize, 0x7fff, word);  // DT_SYMTAB -> unknown tag
            expect(b, "lacks DT_SYMTAB", "no DT_SYMTAB");
            b = sysv;
            patch(b, o, l.dynamic + 4 * l.dynsize + word, 4, word);  // DT_SYMENT 4
            expect(b, "DT_SYMENT", "DT_SYMENT 4");
        }
    }
}

/// Inputs too short or wrong in their first bytes.
void test_small_inputs() {
    const auto empty = tools::read_elf_exports_from_bytes({});
    CHECK(!empty.ok && contains(empty.error, "not an ELF"), "empty input: " + describe(empty));
    const bytes_t partial_magic{0x7f, 'E', 'L'};
    const auto p = tools::read_elf_exports_from_bytes(partial_magic);
    CHECK(!p.ok && contains(p.error, "not an ELF"), "3-byte input: " + describe(p));

    bytes_t ident{0x7f, 'E', 'L', 'F', 2, 1, 1};
    ident.resize(16);
    const auto i = tools::read_elf_exports_from_bytes(ident);
    CHECK(!i.ok && contains(i.error, "truncated"), "identification only: " + describe(i));

    bytes_t bad_class = ident;
    bad_class.resize(64);
    bad_class[4] = 3;
    const auto c = tools::read_elf_exports_from_bytes(bad_class);
    CHECK(!c.ok && contains(c.error, "class 3"), "bad class: " + describe(c));
    bad_class[4] = 2;
    bad_class[5] = 0;
    const auto d = tools::read_elf_exports_from_bytes(bad_class);
    CHECK(!d.ok && contains(d.error, "data encoding"), "bad data encoding: " + describe(d));

    // A valid header with neither section nor program headers.
    bad_class[5] = 1;
    const auto n = tools::read_elf_exports_from_bytes(bad_class);
    CHECK(!n.ok && contains(n.error, "no section headers"), "bare header: " + describe(n));
}

void test_helpers() {
    CHECK(tools::elf_machine_name(62) == "x86_64", "elf_machine_name(62)");
    CHECK(tools::elf_machine_name(183) == "aarch64", "elf_machine_name(183)");
    CHECK(tools::elf_machine_name(3) == "i386", "elf_machine_name(3)");
    CHECK(tools::elf_machine_name(40) == "arm", "elf_machine_name(40)");
    CHECK(tools::elf_machine_name(243) == "riscv", "elf_machine_name(243)");
    CHECK(tools::elf_machine_name(0x1234) == "unknown", "elf_machine_name(0x1234)");
    CHECK(tools::elf_host_machine() != 0, "elf_host_machine() knows this platform");
    CHECK(tools::elf_type_name(3) == "shared object", "elf_type_name(3)");
}

/// Files: a path that does not exist, a directory, and (if the filesystem allows sparse files)
/// one over the size limit.
void test_files() {
    const auto missing = tools::read_elf_exports("/nonexistent/elf_exports_test/missing.so");
    CHECK(!missing.ok && !missing.error.empty(), "missing file: " + describe(missing));
    std::error_code ec;
    const auto dir = tools::read_elf_exports(std::filesystem::temp_directory_path(ec));
    CHECK(!dir.ok && contains(dir.error, "regular file"), "directory: " + describe(dir));

    const auto big =
        std::filesystem::temp_directory_path(ec) /
        ("elf_exports_test_big_" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".bin");
    {
        std::ofstream out(big, std::ios::binary);
        out << '\x7f' << "ELF";
    }
    std::filesystem::resize_file(big, (std::uintmax_t{512} << 20) + 1, ec);
    if (!ec) {
        const auto r = tools::read_elf_exports(big);
        CHECK(!r.ok && contains(r.error, "too large"), "oversized file: " + describe(r));
    } else {
        std::printf("elf_exports_test: skipped the oversized-file check (%s)\n",
                    ec.message().c_str());
    }
    std::filesystem::remove(big, ec);
}

/// The real plugin: its exports, truncations, byte flips, and the PT_DYNAMIC fallback with the
/// section headers stripped.
void test_plugin(const char* path) {
    const auto r = tools::read_elf_exports(path);
    CHECK(r.ok, std::string(path) + ": " + describe(r));
    CHECK(tools::exports_function(r, "polyplug_abi_version"),
          std::string(path) + ": polyplug_abi_version: " + describe(r));
    CHECK(tools::exports_function(r, "polyplug_init"),
          std::string(path) + ": polyplug_init: " + describe(r));
    CHECK(r.type == 3, std::string(path) + ": e_type " + std::to_string(r.type) + " is ET_DYN");
    CHECK(r.machine == tools::elf_host_machine(),
          std::string(path) + ": e_machine " + std::to_string(r.machine) + " (" +
              std::string(tools::elf_machine_name(r.machine)) + ") is the host's");

    bytes_t bytes;
    CHECK(read_file(path, bytes), std::string(path) + ": readable");
    if (bytes.size() < 64 || !r.ok) return;
    const auto from_bytes = tools::read_elf_exports_from_bytes(bytes);
    CHECK(from_bytes.functions == r.functions && from_bytes.objects == r.objects,
          "read_elf_exports_from_bytes agrees with read_elf_exports");
    const std::set<std::string> functions(r.functions.begin(), r.functions.end());
    const std::set<std::string> objects(r.objects.begin(), r.objects.end());

    // Where the section header table is, via the reader's own bounds-checked decoder.
    const bool is64 = bytes[4] == 2;
    const tools::detail::elf_image image(bytes, bytes[5] == 2, is64);
    std::uint64_t shoff = 0;
    std::uint16_t shentsize = 0, shnum = 0;
    (void)image.word(is64 ? 40 : 32, shoff);
    (void)image.u16(is64 ? 58 : 46, shentsize);
    (void)image.u16(is64 ? 60 : 48, shnum);
    const std::uint64_t table_end = shoff + std::uint64_t{shentsize} * shnum;

    // Each kind of damage gets a time budget, so a large plugin (each parse lists thousands of
    // symbols, each truncation copies the file) keeps the test short; the lists are ordered by
    // importance, and what was tried is printed.
    const auto start = test_clock::now();
    std::uint64_t state = 0x9e3779b97f4a7c15u;  // xorshift64, fixed seed: failures reproduce
    auto next_random = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };

    // Truncations: every length below 256, lengths around each section header, then an even
    // stride over the file in shuffled order, so a cut-short run still spreads over the file.
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n < 256; ++n) lengths.push_back(n);
    lengths.push_back(bytes.size() - 1);
    for (std::uint64_t at = shoff; at <= table_end && at < bytes.size(); at += shentsize) {
        for (std::uint64_t d : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2}}) {
            if (at >= d) lengths.push_back(static_cast<std::size_t>(at - d));
        }
        lengths.push_back(static_cast<std::size_t>(at + 1));
        if (shentsize == 0) break;
    }
    const std::size_t stride_begin = lengths.size();
    const std::size_t stride = std::max<std::size_t>(1, bytes.size() / 4096);
    for (std::size_t n = 256; n < bytes.size(); n += stride) lengths.push_back(n);
    for (std::size_t i = lengths.size() - 1; i > stride_begin; --i) {
        const std::size_t j = stride_begin + next_random() % (i - stride_begin + 1);
        std::swap(lengths[i], lengths[j]);
    }
    const std::size_t truncations =
        check_truncations(bytes, lengths, functions, objects, std::string(path) + " truncated",
                          test_clock::now() + std::chrono::milliseconds(600));

    // Byte flips: all of the ELF header, program headers and section header table, then
    // pseudo-random positions over the whole file.
    std::vector<std::size_t> positions = all_positions(is64 ? 64 : 52);
    std::uint64_t phoff = 0;
    std::uint16_t phentsize = 0, phnum = 0;
    (void)image.word(is64 ? 32 : 28, phoff);
    (void)image.u16(is64 ? 54 : 42, phentsize);
    (void)image.u16(is64 ? 56 : 44, phnum);
    for (std::uint64_t at = phoff; at < phoff + std::uint64_t{phentsize} * phnum; ++at)
        positions.push_back(static_cast<std::size_t>(at));
    for (std::uint64_t at = shoff; at < table_end; ++at)
        positions.push_back(static_cast<std::size_t>(at));
    for (int i = 0; i < 4000; ++i) positions.push_back(next_random() % bytes.size());
    const std::size_t flips = check_flips(bytes, positions, std::string(path) + " corrupted",
                                          test_clock::now() + std::chrono::milliseconds(600));

    // Stripped section headers (e_shoff = 0, e_shnum = 0): the PT_DYNAMIC fallback must find
    // the same names, also with the section headers (and what follows the segments) cut off.
    bytes_t stripped = bytes;
    for (std::size_t i = 0; i < (is64 ? 8u : 4u); ++i) stripped[(is64 ? 40 : 32) + i] = 0;
    stripped[is64 ? 60 : 48] = 0;
    stripped[is64 ? 61 : 49] = 0;
    const auto s = tools::read_elf_exports_from_bytes(stripped);
    CHECK(s.ok, std::string(path) + " without section headers: " + describe(s));
    CHECK(std::set<std::string>(s.functions.begin(), s.functions.end()) == functions &&
              std::set<std::string>(s.objects.begin(), s.objects.end()) == objects,
          std::string(path) + " without section headers lists the same names: " + describe(s));
    stripped.resize(static_cast<std::size_t>(std::min<std::uint64_t>(shoff, stripped.size())));
    const auto t = tools::read_elf_exports_from_bytes(stripped);
    CHECK(t.ok && tools::exports_function(t, "polyplug_init") &&
              tools::exports_function(t, "polyplug_abi_version"),
          std::string(path) + " with the section headers cut off: " + describe(t));
    std::vector<std::size_t> program_positions = all_positions(is64 ? 64 : 52);
    for (std::uint64_t at = phoff; at < phoff + std::uint64_t{phentsize} * phnum; ++at)
        program_positions.push_back(static_cast<std::size_t>(at));
    for (int i = 0; i < 4000; ++i) {
        program_positions.push_back(next_random() % std::max<std::size_t>(1, stripped.size()));
    }
    const std::size_t stripped_flips = check_flips(
        stripped, program_positions, std::string(path) + " without section headers, corrupted",
        test_clock::now() + std::chrono::milliseconds(400));

    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(test_clock::now() - start);
    std::printf(
        "elf_exports_test: %s: %zu of %zu truncations, %zu of %zu flip positions, %zu of %zu "
        "without section headers, in %lld ms\n",
        path, truncations, lengths.size(), flips, positions.size(), stripped_flips,
        program_positions.size(), static_cast<long long>(elapsed.count()));
}

void test_not_elf(const char* path) {
    const auto r = tools::read_elf_exports(path);
    CHECK(!r.ok && contains(r.error, "not an ELF"), std::string(path) + ": " + describe(r));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <plugin.so> <not_a_plugin_file>\n", argv[0]);
        return 2;
    }
    test_helpers();
    test_small_inputs();
    test_built_images();
    test_corrupt_images();
    test_files();
    test_plugin(argv[1]);
    test_not_elf(argv[2]);
    if (checks_failed != 0) {
        std::printf("elf_exports_test: %d of %d checks FAILED\n", checks_failed,
                    checks_failed + checks_passed);
        return 1;
    }
    std::printf("elf_exports_test: %d checks passed\n", checks_passed);
    return 0;
}
