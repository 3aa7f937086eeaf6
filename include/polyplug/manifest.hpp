// SPDX-License-Identifier: MIT
/// @file manifest.hpp
/// A bundle's manifest.toml: parsing and validation (toml++), artifact resolution, writing. The
/// values it produces are in manifest_model.hpp.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/file_identity.hpp>
#include <polyplug/detail/toml_names.hpp>
#include <polyplug/detail/toml_prescan.hpp>
#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/manifest_model.hpp>
#include <polyplug/version.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iterator>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// Syntax errors arrive as toml::parse_error exceptions; a no-exceptions toml++ returns a different
// type from toml::parse and would not link against the Debian library anyway.
static_assert(TOML_EXCEPTIONS,
              "polyplug/manifest.hpp needs toml++ with exceptions (TOML_EXCEPTIONS=1)");

POLYPLUG_BEGIN_NAMESPACE

namespace detail {

/// Prefixes messages with "manifest '<source>': " until the bundle's name is known and with
/// "bundle '<name>': " after, so every error says which file or bundle it is about.
class reporter {
public:
    [[nodiscard]] static reporter for_source(std::string_view source) {
        return reporter("manifest '" + std::string(source) + "': ");
    }
    [[nodiscard]] static reporter for_bundle(std::string_view name) {
        return reporter("bundle '" + std::string(name) + "': ");
    }

    void name_known(std::string_view name) { *this = for_bundle(name); }

    [[nodiscard]] status fail(errc code, std::string_view problem) const {
        return {code, prefix_ + std::string(problem)};
    }
    [[nodiscard]] status invalid(std::string_view problem) const {
        return fail(errc::manifest_invalid, problem);
    }

private:
    explicit reporter(std::string prefix) : prefix_(std::move(prefix)) {}
    std::string prefix_;
};

/// Reads "0x" + 1..16 hex digits, or decimal digits within u64; nothing else (no sign, no spaces).
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_id_text(std::string_view text) noexcept {
    const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const std::string_view digits = hex ? text.substr(2) : text;
    const std::uint64_t base = hex ? 16u : 10u;
    if (digits.empty() || (hex && digits.size() > 16)) return std::nullopt;
    std::uint64_t value = 0;
    for (const char c : digits) {
        std::uint64_t digit = base;  // "not a digit" unless one of the cases below says otherwise
        if (c >= '0' && c <= '9') digit = static_cast<std::uint64_t>(c - '0');
        if (hex && c >= 'a' && c <= 'f') digit = static_cast<std::uint64_t>(c - 'a' + 10);
        if (hex && c >= 'A' && c <= 'F') digit = static_cast<std::uint64_t>(c - 'A' + 10);
        if (digit >= base || value > (UINT64_MAX - digit) / base) return std::nullopt;
        value = value * base + digit;
    }
    return value;
}

/// An id written as a bare decimal integer above 2^63 - 1, as the original's manifests write
/// them (`id = 11175554700064995833`): out of TOML's integer range, so toml++ would refuse the
/// file. The pre-scan puts `nan` in its place for toml++ and keeps the number here, by line.
struct wide_id {
    std::optional<std::uint64_t> value;  ///< nothing when the digits exceed 2^64 - 1
    std::string digits;                  ///< as written (cut at 40 digits, for messages)
};

/// The wide ids of one manifest, by line; at most one id key fits on a line.
using wide_ids = std::map<std::uint32_t, wide_id>;

/// `id` at the top level, `contract_id` and `bundle_id` in a `[[dependency]]`: the keys a
/// manifest writes as u64 (spec 9.8).
[[nodiscard]] inline bool is_id_key(const toml_line_assignment& a) noexcept {
    if (a.in_root) return a.key == "id";
    return a.table_is_array && a.table == "dependency" &&
           (a.key == "contract_id" || a.key == "bundle_id");
}

/// The one pre-scan of manifest text: refuses nesting beyond max_toml_nesting, and swaps each
/// id key's value written as plain decimal digits above 2^63 - 1 for `nan` padded with spaces
/// to the same length (so every column toml++ reports stays true), writing `patched` (left
/// empty when nothing changed) and `ids`. Every other spelling (a sign, underscores, a leading
/// zero, any other key or place) reaches toml++ unchanged and keeps its verdict.
[[nodiscard]] inline std::optional<toml_nesting_excess> prescan_manifest(std::string_view text,
                                                                         std::string& patched,
                                                                         wide_ids& ids) {
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    return toml_prescanner(text, max_toml_nesting).run([&](const toml_line_assignment& a) {
        if (!is_id_key(a)) return;
        std::size_t begin = a.value_offset;
        while (begin < text.size() && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
        std::size_t end = begin;
        while (end < text.size() && digit(text[end])) ++end;
        if (end == begin || text[begin] == '0') return;
        if (end < text.size() &&
            std::string_view(" \t\r\n#").find(text[end]) == std::string_view::npos) {
            return;  // more follows the digits: a float, a date, or not TOML
        }
        const std::string_view digits = text.substr(begin, end - begin);
        const std::optional<std::uint64_t> value = parse_id_text(digits);
        if (value && *value <= std::uint64_t{INT64_MAX}) return;  // a TOML integer
        if (patched.empty()) patched.assign(text);
        // At least 19 digits: room for "nan".
        patched.replace(begin, digits.size(), "nan" + std::string(digits.size() - 3, ' '));
        const std::size_t shown = 40;
        ids[a.line] = {value, digits.size() > shown ? std::string(digits.substr(0, shown)) + "..."
                                                    : std::string(digits)};
    });
}

/// What follows the '@' of "name@..." (and what a min_version holds): a bare major "N" or a
/// version "a.b[.c]".
struct version_spec {
    std::uint32_t major = 0;
    std::optional<polyplug::version> version;  ///< set for the "a.b[.c]" form
};

[[nodiscard]] constexpr std::optional<version_spec> parse_version_spec(
    std::string_view text) noexcept {
    if (const auto full = polyplug::version::parse(text)) return version_spec{full->major, full};
    if (text.empty()) return std::nullopt;
    std::uint64_t major = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        major = major * 10u + static_cast<std::uint64_t>(c - '0');
        if (major > UINT32_MAX) return std::nullopt;
    }
    return version_spec{static_cast<std::uint32_t>(major), std::nullopt};
}

/// "name@spec" split at the first '@'; `spec` is empty-optional when there is no '@'.
struct contract_ref {
    std::string_view name;
    std::optional<std::string_view> spec;
};

[[nodiscard]] constexpr contract_ref split_contract_ref(std::string_view text) noexcept {
    const std::size_t at = text.find('@');
    if (at == std::string_view::npos) return {text, std::nullopt};
    return {text.substr(0, at), text.substr(at + 1)};
}

/// Typed lookups in one TOML table. `path` prefixes key names in messages: "" at the top level,
/// "dependency[2]." inside the third dependency, and so on. A key of the wrong type is an error;
/// an absent key leaves the output unchanged unless the lookup says it is required.
class table_reader {
public:
    table_reader(const toml::table& table, const reporter& report, std::string path = {},
                 const wide_ids* ids = nullptr)
        : table_(table), report_(report), path_(std::move(path)), ids_(ids) {}

    [[nodiscard]] const toml::node* find(std::string_view key) const { return table_.get(key); }

    /// "'dependency[0].contract'": the key as messages name it.
    [[nodiscard]] std::string quoted(std::string_view key) const {
        return "'" + path_ + std::string(key) + "'";
    }

    [[nodiscard]] status invalid(std::string_view problem) const {
        return report_.invalid(problem);
    }

    [[nodiscard]] status missing(std::string_view key) const {
        return invalid("missing required key " + quoted(key));
    }

    [[nodiscard]] status wrong_type(std::string_view key, std::string_view expected,
                                    const toml::node& found) const {
        return invalid("key " + quoted(key) + " must be " + std::string(expected) + ", found " +
                       std::string(toml_type_name(found.type())));
    }

    /// `out` = the node at `key` if it has type `Node`; nullptr when absent.
    template <class Node>
    [[nodiscard]] status find_as(std::string_view key, std::string_view expected,
                                 const Node*& out) const {
        out = nullptr;
        const toml::node* node = find(key);
        if (node == nullptr) return {};
        out = node->template as<Node>();
        return out != nullptr ? status{} : wrong_type(key, expected, *node);
    }

    [[nodiscard]] status optional_string(std::string_view key, std::string& out) const {
        const toml::value<std::string>* value = nullptr;
        if (status s = find_as(key, "a string", value); !s) return s;
        if (value != nullptr) out = value->get();
        return {};
    }

    /// A string that must be present and non-empty.
    [[nodiscard]] status required_string(std::string_view key, std::string& out) const {
        if (find(key) == nullptr) return missing(key);
        std::string value;
        if (status s = optional_string(key, value); !s) return s;
        if (value.empty()) return invalid("key " + quoted(key) + " must not be empty");
        out = std::move(value);
        return {};
    }

    [[nodiscard]] status optional_bool(std::string_view key, bool& out) const {
        const toml::value<bool>* value = nullptr;
        if (status s = find_as(key, "a boolean", value); !s) return s;
        if (value != nullptr) out = value->get();
        return {};
    }

    [[nodiscard]] status optional_table(std::string_view key, const toml::table*& out) const {
        return find_as(key, "a table", out);
    }

    [[nodiscard]] status optional_string_array(std::string_view key,
                                               std::vector<std::string>& out) const {
        const toml::array* array = nullptr;
        if (status s = find_as(key, "an array of strings", array); !s) return s;
        if (array == nullptr) return {};
        std::vector<std::string> strings;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            const toml::value<std::string>* value = element.as_string();
            if (value == nullptr) return wrong_type(indexed(key, i), "a string", element);
            strings.push_back(value->get());
        }
        out = std::move(strings);
        return {};
    }

    /// A u64 id. TOML integers stop at 2^63 - 1, so ids are also accepted as negative integers
    /// (the two's complement of the u64), "0x..." hex strings and decimal strings, and as bare
    /// decimal integers above 2^63 - 1 (which the pre-scan kept aside: see wide_id).
    [[nodiscard]] status optional_id(std::string_view key,
                                     std::optional<std::uint64_t>& out) const {
        const toml::node* node = find(key);
        if (node == nullptr) return {};
        if (const toml::value<std::int64_t>* integer = node->as_integer()) {
            out = static_cast<std::uint64_t>(integer->get());
            return {};
        }
        if (const wide_id* wide = wide_id_at(*node)) {
            if (!wide->value) {
                return invalid("key " + quoted(key) + " is " + wide->digits +
                               ", above 18446744073709551615 (2^64 - 1), the largest 64-bit id");
            }
            out = wide->value;
            return {};
        }
        const toml::value<std::string>* text = node->as_string();
        if (text == nullptr) {
            return wrong_type(key, "an integer or a \"0x...\" / decimal string", *node);
        }
        out = parse_id_text(text->get());
        if (!out) {
            return invalid("key " + quoted(key) + " is not a 64-bit id: \"" + text->get() +
                           "\" (write \"0x\" and up to 16 hex digits, or decimal digits)");
        }
        return {};
    }

    [[nodiscard]] static std::string indexed(std::string_view key, std::size_t index) {
        return std::string(key) + "[" + std::to_string(index) + "]";
    }

    [[nodiscard]] const reporter& report() const noexcept { return report_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] const wide_ids* ids() const noexcept { return ids_; }

private:
    /// The wide id the pre-scan took from this node's line; only its `nan` stand-in qualifies,
    /// so a float the manifest itself wrote stays a wrong type.
    [[nodiscard]] const wide_id* wide_id_at(const toml::node& node) const {
        if (ids_ == nullptr || !node.is_floating_point()) return nullptr;
        const auto found = ids_->find(node.source().begin.line);
        return found == ids_->end() ? nullptr : &found->second;
    }

    const toml::table& table_;
    const reporter& report_;
    std::string path_;
    const wide_ids* ids_;
};

/// `name` and `id`, checked first: an edited id means nothing else in the file can be trusted,
/// so tampering is reported ahead of any other problem.
[[nodiscard]] inline status read_identity(const table_reader& top, reporter& report, manifest& m) {
    if (status s = top.required_string("name", m.name); !s) return s;
    report.name_known(m.name);

    std::optional<std::uint64_t> id;
    if (status s = top.optional_id("id", id); !s) return s;
    if (!id) return top.missing("id");
    if (*id == 0) return top.invalid("key 'id' must not be 0 (0 is reserved for the host)");
    const std::uint64_t expected = bundle_id(m.name);
    if (*id != expected) {
        return report.fail(errc::bundle_tampered,
                           "id does not match the bundle name (expected " + format_id(expected) +
                               " = bundle_id(\"" + m.name + "\"), found " + format_id(*id) + ")");
    }
    m.id = *id;
    return {};
}

[[nodiscard]] inline status read_version(const table_reader& top, manifest& m) {
    if (status s = top.optional_string("version", m.version_text); !s) return s;
    if (m.version_text.empty()) return {};  // absent or "" both mean 0.0.0
    const auto parsed = polyplug::version::parse(m.version_text);
    if (!parsed) {
        return top.invalid("key 'version' is not \"major.minor[.patch]\": \"" + m.version_text +
                           "\"");
    }
    m.version = *parsed;
    return {};
}

[[nodiscard]] inline status read_loader(const table_reader& top, manifest& m) {
    // Builds before the rename wrote the loader's name under `runtime`; `loader` wins if both are.
    const bool legacy = top.find("loader") == nullptr && top.find("runtime") != nullptr;
    return top.required_string(legacy ? "runtime" : "loader", m.loader);
}

/// The running platform's entry of `file.<os>.<arch>`. Every known platform's entry is checked,
/// not only the running one's, so a manifest is valid or invalid the same way on every machine.
[[nodiscard]] inline status select_platform_file(const table_reader& platforms, std::string& out) {
    std::string selected;
    for (const std::string_view os : {"linux", "windows", "macos"}) {
        const toml::table* arches = nullptr;
        if (status s = platforms.optional_table(os, arches); !s) return s;
        if (arches == nullptr) continue;
        const table_reader entries(*arches, platforms.report(),
                                   platforms.path() + std::string(os) + ".");
        for (const std::string_view arch : {"x86_64", "aarch64"}) {
            std::string file;
            if (status s = entries.optional_string(arch, file); !s) return s;
            if (entries.find(arch) != nullptr && file.empty()) {
                return entries.invalid("key " + entries.quoted(arch) + " must not be empty");
            }
            if (os == current_platform_os() && arch == current_platform_arch()) selected = file;
        }
    }
    if (selected.empty()) {
        return platforms.invalid("no file entry for platform " +
                                 std::string(current_platform_os()) + "." +
                                 std::string(current_platform_arch()));
    }
    out = std::move(selected);
    return {};
}

[[nodiscard]] inline status read_file(const table_reader& top, manifest& m) {
    const toml::node* node = top.find("file");
    if (node == nullptr) return top.missing("file");
    if (node->is_string()) return top.required_string("file", m.file);
    const toml::table* platforms = node->as_table();
    if (platforms == nullptr) {
        return top.wrong_type("file", "a string or a table of platforms", *node);
    }
    return select_platform_file(table_reader(*platforms, top.report(), "file."), m.file);
}

[[nodiscard]] inline status read_provided(const table_reader& top, const std::string& entry,
                                          const polyplug::version& bundle_version,
                                          provided_contract& out) {
    const auto [name, spec] = split_contract_ref(entry);
    if (name.empty()) return top.invalid("provides entry \"" + entry + "\" has no contract name");
    out.name = std::string(name);
    if (!spec) {
        out.major = bundle_version.major;  // a bare name is provided at the bundle's own major
    } else if (const auto parsed = parse_version_spec(*spec)) {
        out.major = parsed->major;
        out.version = parsed->version;
    } else {
        return top.invalid("provides entry \"" + entry +
                           "\": the part after '@' must be a major or major.minor[.patch]");
    }
    out.contract_id = guest_contract_id(out.name, out.major);
    return {};
}

[[nodiscard]] inline status read_provides(const table_reader& top, manifest& m) {
    std::vector<std::string> entries;
    if (status s = top.optional_string_array("provides", entries); !s) return s;
    for (const std::string& entry : entries) {
        provided_contract provided;
        if (status s = read_provided(top, entry, m.version, provided); !s) return s;
        m.provides.push_back(std::move(provided));
    }
    return {};
}

[[nodiscard]] inline status read_function_count(const table_reader& top, manifest& m) {
    const toml::table* counts = nullptr;
    if (status s = top.optional_table("function_count", counts); !s) return s;
    if (counts == nullptr) return {};
    for (const auto& [key, node] : *counts) {
        const toml::value<std::int64_t>* count = node.as_integer();
        if (count == nullptr || count->get() < 0 || count->get() > std::int64_t{UINT32_MAX}) {
            return top.invalid("key 'function_count.\"" + std::string(key.str()) +
                               "\"' must be an integer in [0, 4294967295]");
        }
        m.function_count.emplace(std::string(key.str()), static_cast<std::uint32_t>(count->get()));
    }
    return {};
}

[[nodiscard]] inline status read_dependency_kind(const table_reader& fields, dependency_kind& out) {
    std::string kind = "contract";
    if (status s = fields.optional_string("kind", kind); !s) return s;
    if (kind == "contract") {
        out = dependency_kind::contract;
    } else if (kind == "bundle") {
        out = dependency_kind::bundle;
    } else {
        return fields.invalid("key " + fields.quoted("kind") +
                              " must be \"contract\" or \"bundle\", found \"" + kind + "\"");
    }
    return {};
}

/// The required major: from "name@N[.m.p]" in `contract`, else from `min_version`.
[[nodiscard]] inline status read_dependency_major(const table_reader& fields, std::string_view ref,
                                                  manifest_dependency& dep,
                                                  std::optional<std::uint32_t>& major) {
    const auto [name, spec] = split_contract_ref(ref);
    if (name.empty()) return fields.invalid("key " + fields.quoted("contract") + " has no name");
    dep.contract = std::string(name);
    if (spec) {
        const auto parsed = parse_version_spec(*spec);
        if (!parsed) {
            return fields.invalid("key " + fields.quoted("contract") +
                                  ": the part after '@' in \"" + std::string(ref) +
                                  "\" must be a major or major.minor[.patch]");
        }
        major = parsed->major;
    }
    if (!dep.min_version.empty()) {
        const auto parsed = parse_version_spec(dep.min_version);
        if (!parsed) {
            return fields.invalid("key " + fields.quoted("min_version") +
                                  " must be a major or major.minor[.patch], found \"" +
                                  dep.min_version + "\"");
        }
        if (!major) major = parsed->major;
    }
    return {};
}

[[nodiscard]] inline status settle_contract_id(const table_reader& fields,
                                               std::optional<std::uint32_t> major,
                                               std::uint64_t written, manifest_dependency& dep) {
    if (!major) {
        if (written == 0) {
            return fields.invalid("dependency on '" + dep.contract +
                                  "' names no major version: write \"" + dep.contract +
                                  "@<major>\", a min_version or a contract_id");
        }
        // Nothing to check the id against; 0.1.1 enforces dependencies with it verbatim.
        dep.contract_id = written;
        return {};
    }
    dep.major = *major;
    const std::uint64_t expected = guest_contract_id(dep.contract, dep.major);
    if (written != 0 && written != expected) {
        return fields.invalid("key " + fields.quoted("contract_id") + " does not match " +
                              "guest_contract_id(\"" + dep.contract + "\", " +
                              std::to_string(dep.major) + ") (expected " + format_id(expected) +
                              ", found " + format_id(written) + ")");
    }
    dep.contract_id = expected;
    return {};
}

[[nodiscard]] inline status settle_bundle_id(const table_reader& fields, std::uint64_t written,
                                             manifest_dependency& dep) {
    if (dep.bundle.empty()) {
        dep.bundle_id = written;
        return {};
    }
    const std::uint64_t expected = bundle_id(dep.bundle);
    if (written != 0 && written != expected) {
        return fields.invalid("key " + fields.quoted("bundle_id") + " does not match bundle_id(\"" +
                              dep.bundle + "\") (expected " + format_id(expected) + ", found " +
                              format_id(written) + ")");
    }
    dep.bundle_id = expected;
    return {};
}

[[nodiscard]] inline status read_dependency(const table_reader& fields, manifest_dependency& dep) {
    std::string ref;
    std::optional<std::uint64_t> contract_id;
    std::optional<std::uint64_t> written_bundle_id;
    if (status s = read_dependency_kind(fields, dep.kind); !s) return s;
    if (status s = fields.required_string("contract", ref); !s) return s;
    if (status s = fields.optional_string("min_version", dep.min_version); !s) return s;
    if (status s = fields.optional_string("bundle", dep.bundle); !s) return s;
    if (status s = fields.optional_id("contract_id", contract_id); !s) return s;
    if (status s = fields.optional_id("bundle_id", written_bundle_id); !s) return s;

    std::optional<std::uint32_t> major;
    if (status s = read_dependency_major(fields, ref, dep, major); !s) return s;
    // A written 0 counts as absent for both ids: 0 is never a valid contract or bundle id.
    if (status s = settle_contract_id(fields, major, contract_id.value_or(0), dep); !s) return s;
    return settle_bundle_id(fields, written_bundle_id.value_or(0), dep);
}

[[nodiscard]] inline status read_dependencies(const table_reader& top, manifest& m) {
    const toml::array* list = nullptr;
    if (status s = top.find_as("dependency", "an array of tables ([[dependency]])", list); !s) {
        return s;
    }
    if (list == nullptr) return {};
    for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string where = table_reader::indexed("dependency", i);
        const toml::node& element = *list->get(i);
        const toml::table* fields = element.as_table();
        if (fields == nullptr) return top.wrong_type(where, "a table", element);
        manifest_dependency dep;
        if (status s =
                read_dependency(table_reader(*fields, top.report(), where + ".", top.ids()), dep);
            !s) {
            return s;
        }
        m.dependencies.push_back(std::move(dep));
    }
    return {};
}

/// Every rule of spec 9.8, in the order messages should come out: identity first.
[[nodiscard]] inline status read_manifest_table(const toml::table& document, reporter& report,
                                                const wide_ids& ids, manifest& m) {
    const table_reader top(document, report, {}, &ids);
    if (status s = read_identity(top, report, m); !s) return s;
    if (status s = read_version(top, m); !s) return s;
    if (status s = read_loader(top, m); !s) return s;
    if (status s = read_file(top, m); !s) return s;
    if (status s = read_provides(top, m); !s) return s;  // after version: bare names use its major
    if (status s = read_function_count(top, m); !s) return s;
    if (status s = top.optional_bool("needs_reinit_on_dep_reload", m.needs_reinit_on_dep_reload);
        !s) {
        return s;
    }
    if (status s = top.optional_string_array("bundle_dependencies", m.bundle_dependencies); !s) {
        return s;
    }
    if (status s = top.optional_string("api", m.api); !s) return s;
    return read_dependencies(top, m);
}

[[nodiscard]] inline std::string too_large_message(std::uintmax_t size) {
    return "manifest is " + std::to_string(size) + " bytes, over the " +
           std::to_string(max_manifest_bytes) + "-byte limit";
}

/// Runs `body`, turning any exception but std::bad_alloc into errc::manifest_invalid: parsing and
/// reading promise a status, and nothing in them should throw anything else.
template <class Body>
[[nodiscard]] status guard_exceptions(const reporter& report, Body&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        return report.invalid(std::string("unexpected error: ") + e.what());
    }
}

/// The bytes of `file`, refusing more than max_manifest_bytes even if the file grows while read.
/// Plain open/read/close: a load reads its manifest every time, and this is most of what a warm
/// load costs besides dlopen. A manifest is small: one read into a buffer on the stack that comes
/// back short is the whole of a regular file, with no fstat (a system call saved on every load).
/// Anything else (empty, an error, a full buffer) is looked at with fstat: a directory, a FIFO
/// or a device is refused as not a regular file. O_NONBLOCK keeps a FIFO from blocking.
[[nodiscard]] inline status read_manifest_text(const std::string& file, std::string& out) {
    // The "manifest '<file>': " prefix is built only when there is something to report.
    const auto refuse = [&file](std::string_view problem) {
        return reporter::for_source(file).invalid(problem);
    };
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return refuse("no such file");  // the prefix names the file
        return refuse(std::string("cannot open the file for reading: ") + std::strerror(errno));
    }
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_on_exit{fd};
    char first[4096];
    ssize_t got = 0;
    do got = ::read(fd, first, sizeof first);
    while (got < 0 && errno == EINTR);
    if (got > 0 && static_cast<std::size_t>(got) < sizeof first) {
        out.assign(first, static_cast<std::size_t>(got));
        return {};
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0)
        return refuse(std::string("cannot inspect the file: ") + std::strerror(errno));
    if (!S_ISREG(info.st_mode)) return refuse("not a regular file");
    if (got < 0) return refuse("cannot read the file");
    if (static_cast<std::uintmax_t>(info.st_size) > max_manifest_bytes)
        return refuse(too_large_message(static_cast<std::uintmax_t>(info.st_size)));
    std::string text(std::max(static_cast<std::size_t>(info.st_size), sizeof first) + 1, '\0');
    std::memcpy(text.data(), first, static_cast<std::size_t>(got));
    std::size_t used = static_cast<std::size_t>(got);
    while (got != 0) {  // a full first buffer: the rest of a larger file
        if (used == text.size()) {
            if (text.size() > max_manifest_bytes) return refuse(too_large_message(used));
            text.resize(text.size() * 2);  // the file grew since fstat
        }
        const std::size_t wanted = text.size() - used;
        got = ::read(fd, text.data() + used, wanted);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return refuse("cannot read the file");
        used += static_cast<std::size_t>(got);
        // A regular file reads short only at its end: no further read to see 0.
        if (static_cast<std::size_t>(got) < wanted) break;
    }
    if (used > max_manifest_bytes) return refuse(too_large_message(used));
    text.resize(used);
    out = std::move(text);
    return {};
}

/// True when `text` is a path that lexically_normal would leave as it is and that stays so with
/// "/name" appended: no empty component but a leading root, no "." or ".." component. A cheap
/// test that lets resolve_artifact skip the path algebra in the common case.
[[nodiscard]] inline bool is_plain_normal_dir(std::string_view text) noexcept {
    if (text.empty()) return false;
    std::size_t start = text.front() == '/' ? 1 : 0;
    if (start == 1 && text.size() > 1 && text[1] == '/') return false;  // "//": a root name
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('/', start), text.size());
        const std::string_view part = text.substr(start, end - start);
        if (part.empty() && end != text.size()) return false;  // "a//b"
        if (part == "." || part == "..") return false;
        if (end + 1 == text.size()) break;  // one trailing '/': appending adds none
        start = end + 1;
    }
    return text.find('\0') == std::string_view::npos;
}

/// True when `name` is a single plain file name: not empty, no '/', not "." or "..", no NUL.
[[nodiscard]] inline bool is_plain_file_name(std::string_view name) noexcept {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

/// True when `inner` is `outer` or below it, comparing whole components.
[[nodiscard]] inline bool is_within(const std::filesystem::path& inner,
                                    const std::filesystem::path& outer) {
    return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first ==
           outer.end();
}

/// Absolute, rooted, or climbing above its start with "..": such a `file` could name anything.
[[nodiscard]] inline bool escapes_lexically(const std::filesystem::path& relative) {
    if (relative.is_absolute() || relative.has_root_name() || relative.has_root_directory()) {
        return true;
    }
    const std::filesystem::path normal = relative.lexically_normal();
    return !normal.empty() && *normal.begin() == "..";
}

/// `text` as a TOML basic string: quoted, with quote, backslash and control characters escaped.
[[nodiscard]] inline std::string toml_string(std::string_view text) {
    constexpr std::string_view hex = "0123456789ABCDEF";
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (byte < 0x20u || byte == 0x7Fu) {
            out += "\\u00";
            out += hex[byte >> 4u];
            out += hex[byte & 0xFu];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

[[nodiscard]] inline std::string toml_string_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        out += (i == 0 ? "" : ", ") + toml_string(items[i]);
    }
    return out + "]";
}

/// `version_text`, else the parsed `version` of a manifest built in code (unless it is 0.0.0).
[[nodiscard]] inline std::string version_text_to_write(const manifest& m) {
    if (!m.version_text.empty() || m.version == polyplug::version{}) return m.version_text;
    return m.version.to_string();
}

[[nodiscard]] inline std::string provided_text(const provided_contract& p) {
    return p.name + "@" + (p.version ? p.version->to_string() : std::to_string(p.major));
}

/// "name@major" pins the major when the manifest is read back. Only an id kept verbatim (the
/// manifest named no major) goes with the bare name, or reading it back would reject the id.
[[nodiscard]] inline std::string dependency_contract_text(const manifest_dependency& dep) {
    const bool canonical =
        dep.contract_id == 0 || dep.contract_id == guest_contract_id(dep.contract, dep.major);
    return canonical ? dep.contract + "@" + std::to_string(dep.major) : dep.contract;
}

}  // namespace detail

/// Parses and validates manifest text; `source_name` (usually the file's path) names it in
/// messages. `out` is left untouched on failure.
///
/// Errors: errc::manifest_invalid (syntax, missing or mistyped keys, rule violations, text over
/// max_manifest_bytes, keys, tables and brackets nested deeper than detail::max_toml_nesting
/// levels), errc::bundle_tampered (`id` != bundle_id(name)).
[[nodiscard]] inline status parse_manifest(std::string_view toml_text, std::string_view source_name,
                                           manifest& out) {
    detail::reporter report = detail::reporter::for_source(source_name);
    if (toml_text.size() > max_manifest_bytes) {
        return report.invalid(detail::too_large_message(toml_text.size()));
    }
    return detail::guard_exceptions(report, [&]() -> status {
        // Before toml++: it recurses over the tables that dotted keys and headers create.
        std::string patched;
        detail::wide_ids ids;
        if (const auto excess = detail::prescan_manifest(toml_text, patched, ids)) {
            return report.invalid("nested too deeply at line " +
                                  std::to_string(excess->where.line) + ", column " +
                                  std::to_string(excess->where.column) + ": " + excess->problem());
        }
        toml::table document;
        try {
            document =
                toml::parse(patched.empty() ? toml_text : std::string_view(patched), source_name);
        } catch (const toml::parse_error& e) {
            return report.invalid(
                "TOML syntax error at line " + std::to_string(e.source().begin.line) + ", column " +
                std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
        }
        manifest parsed;
        if (status s = detail::read_manifest_table(document, report, ids, parsed); !s) return s;
        out = std::move(parsed);
        return {};
    });
}

/// Reads and validates `bundle_dir`/manifest.toml and sets `dir` and `path`. `out` is left
/// untouched on failure.
///
/// Errors: those of parse_manifest; errc::manifest_invalid also when the file is missing
/// ("manifest '<dir>/manifest.toml': no such file"), unreadable or larger than
/// max_manifest_bytes.
[[nodiscard]] inline status read_manifest(const std::filesystem::path& bundle_dir, manifest& out) {
    const std::filesystem::path file = bundle_dir / "manifest.toml";
    const detail::reporter report = detail::reporter::for_source(file.string());
    return detail::guard_exceptions(report, [&]() -> status {
        std::string text;
        if (status s = detail::read_manifest_text(file, text); !s) return s;
        manifest parsed;
        if (status s = parse_manifest(text, file.string(), parsed); !s) return s;
        parsed.dir = bundle_dir;
        parsed.path = file;
        out = std::move(parsed);
        return {};
    });
}

/// The artifact path `m.dir / m.file`, lexically normalised, after checking that it stays in the
/// bundle directory (an empty `m.dir` means the current directory).
///
/// Errors: errc::path_escapes_bundle when `file` is absolute or climbs out with "..", or when a
/// symlink takes the existing artifact outside the bundle directory and `allow_outside_symlinks`
/// is false; errc::artifact_not_found when nothing exists there; errc::manifest_invalid when
/// `file` is empty.
///
/// `identity`, when given, receives the artifact's file_identity if the artifact is a regular
/// file reached without a symlink (the lstat that checks it is then a stat of the file), and is
/// reset otherwise.
[[nodiscard]] inline status resolve_artifact(const manifest& m, bool allow_outside_symlinks,
                                             std::filesystem::path& out,
                                             detail::file_identity* identity = nullptr) {
    namespace fs = std::filesystem;
    struct stat info {};
    // The common case, without the path algebra below: `file` is a plain name in a directory
    // given in normal form, so the artifact is `dir/file` as written, lexically inside, and the
    // lstat of the file is the whole check unless the file itself is a symlink (then the general
    // path below looks again).
    if (detail::is_plain_file_name(m.file) && detail::is_plain_normal_dir(m.dir.native())) {
        std::string text;
        text.reserve(m.dir.native().size() + 1 + m.file.size());
        text = m.dir.native();
        if (text.back() != '/') text += '/';
        text += m.file;
        if (::lstat(text.c_str(), &info) == 0 && !S_ISLNK(info.st_mode)) {
            if (identity != nullptr)
                *identity = S_ISREG(info.st_mode) ? detail::file_identity::of(info)
                                                  : detail::file_identity{};
            out = fs::path(std::move(text));
            return {};
        }
    }
    const detail::reporter report = detail::reporter::for_bundle(m.name);
    if (m.file.empty()) return report.invalid("the manifest names no artifact file");
    const fs::path relative(m.file);
    if (detail::escapes_lexically(relative)) {
        return report.fail(errc::path_escapes_bundle,
                           "artifact path '" + m.file + "' escapes the bundle directory");
    }
    const fs::path dir = m.dir.empty() ? fs::path(".") : m.dir;
    fs::path artifact = (dir / relative).lexically_normal();

    // One lstat per component below the bundle directory (usually just the file): lexically the
    // path is inside, so only a symlink on the way can take it elsewhere, and only then are the
    // canonical paths (a readlink per component) worth their cost.
    if (::lstat(artifact.c_str(), &info) != 0) {
        const int error = errno;
        const std::string why =
            error == ENOENT ? std::string() : " (" + std::string(std::strerror(error)) + ")";
        return report.fail(errc::artifact_not_found,
                           "artifact '" + artifact.string() + "' not found" + why);
    }
    bool through_symlink = S_ISLNK(info.st_mode);
    fs::path below = dir;
    const fs::path inside = relative.lexically_normal();
    for (auto part = inside.begin(); !through_symlink && part != inside.end(); ++part) {
        if (std::next(part) == inside.end()) break;  // the file itself: lstat'ed above
        below /= *part;
        struct stat step {};
        through_symlink = ::lstat(below.c_str(), &step) == 0 && S_ISLNK(step.st_mode);
    }
    if (identity != nullptr)
        *identity = !through_symlink && S_ISREG(info.st_mode) ? detail::file_identity::of(info)
                                                              : detail::file_identity{};
    if (through_symlink) {
        std::error_code ec;
        if (!fs::exists(artifact, ec)) {
            const std::string why = ec ? " (" + ec.message() + ")" : "";
            return report.fail(errc::artifact_not_found,
                               "artifact '" + artifact.string() + "' not found" + why);
        }
        if (!allow_outside_symlinks) {
            const fs::path real_dir = fs::canonical(dir, ec);
            const fs::path real_artifact = ec ? fs::path() : fs::canonical(artifact, ec);
            if (ec) {
                return report.fail(
                    errc::artifact_not_found,
                    "cannot resolve artifact '" + artifact.string() + "': " + ec.message());
            }
            if (!detail::is_within(real_artifact, real_dir)) {
                return report.fail(errc::path_escapes_bundle,
                                   "artifact '" + artifact.string() +
                                       "' goes through a symlink to '" + real_artifact.string() +
                                       "', outside the bundle directory '" + real_dir.string() +
                                       "'");
            }
        }
    }
    out = std::move(artifact);
    return {};
}

/// The manifest as TOML text that parse_manifest reads back to an equal manifest (`dir` and
/// `path` are not part of the text). Ids are written as "0x..." strings, since TOML integers stop
/// at 2^63 - 1; `file` as the single string for this platform; `version` as `version_text`, or
/// as `version` when the text is empty and the version is not 0.0.0.
[[nodiscard]] inline std::string write_manifest(const manifest& m) {
    using detail::toml_string;
    const std::string version_text = detail::version_text_to_write(m);
    std::vector<std::string> provides;
    for (const provided_contract& p : m.provides) provides.push_back(detail::provided_text(p));
    std::string counts;
    for (const auto& [key, count] : m.function_count) {
        counts += (counts.empty() ? " " : ", ") + toml_string(key) + " = " + std::to_string(count);
    }

    // Top-level keys first: in TOML every key after a [table] header belongs to that table.
    std::string text;
    text += "id = " + toml_string(format_id(m.id)) + "\n";
    text += "name = " + toml_string(m.name) + "\n";
    if (!version_text.empty()) text += "version = " + toml_string(version_text) + "\n";
    text += "loader = " + toml_string(m.loader) + "\n";
    text += "file = " + toml_string(m.file) + "\n";
    text += "provides = " + detail::toml_string_array(provides) + "\n";
    text += "function_count = {" + counts + (counts.empty() ? "}" : " }") + "\n";
    text += "needs_reinit_on_dep_reload = " +
            std::string(m.needs_reinit_on_dep_reload ? "true" : "false") + "\n";
    text += "bundle_dependencies = " + detail::toml_string_array(m.bundle_dependencies) + "\n";
    if (!m.api.empty()) text += "api = " + toml_string(m.api) + "\n";
    for (const manifest_dependency& dep : m.dependencies) {
        text += "\n[[dependency]]\n";
        text += std::string("kind = ") +
                (dep.kind == dependency_kind::bundle ? "\"bundle\"" : "\"contract\"") + "\n";
        text += "contract = " + toml_string(detail::dependency_contract_text(dep)) + "\n";
        if (!dep.min_version.empty()) {
            text += "min_version = " + toml_string(dep.min_version) + "\n";
        }
        if (dep.contract_id != 0) {
            text += "contract_id = " + toml_string(format_id(dep.contract_id)) + "\n";
        }
        if (!dep.bundle.empty()) text += "bundle = " + toml_string(dep.bundle) + "\n";
        if (dep.bundle_id != 0) {
            text += "bundle_id = " + toml_string(format_id(dep.bundle_id)) + "\n";
        }
    }
    return text;
}

POLYPLUG_END_NAMESPACE
