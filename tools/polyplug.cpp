// SPDX-License-Identifier: MIT
/// @file polyplug.cpp
/// The `polyplug` command-line tool: ids of names, headers generated from contract files,
/// manifests generated from bundle files, bundle validation without running the bundle's code,
/// and inspection of a bundle loaded in a scratch runtime. docs/CLI.md is its manual.
///
/// Exit codes: 0 success; 1 the input was refused (invalid file, failed check, failed load);
/// 2 the command line itself is wrong (unknown command or option, missing argument).
#include "bundle_file.hpp"
#include "elf_exports.hpp"
#include "generate_c.hpp"
#include "generate_cpp.hpp"
#include "loader_modules.hpp"
#include "names.hpp"
#include "scaffold.hpp"

#include <polyplug/polyplug.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using namespace std::string_view_literals;
using polyplug::format_id;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_refused = 1;
constexpr int exit_usage = 2;

constexpr std::string_view overview = R"(usage: polyplug <command> [options]

commands:
  id NAME[@MAJOR]            the bundle id of NAME and its guest and host contract ids
  generate --api FILE --lang c|cpp --out DIR
                             a C or C++ header declaring the contracts of a contract file
  manifest --bundle FILE     manifest.toml from a bundle.toml (ids, provides, function counts)
  validate DIR               check a bundle without running its code
  validate --api FILE        check a contract file
  inspect DIR                load a bundle in a scratch runtime and list what it registers
  types [--format text|markdown]
                             the type names a contract file accepts, with size and alignment
  completion bash            a bash completion script for polyplug
  new NAME --lang LANG [--out DIR]
                             a new bundle folder: contract, bundle.toml, plugin stub, build,
                             host and README (LANG: c, cpp, rust, lua, python, js)

`polyplug <command> --help` describes one command; `polyplug --version` prints the version.
Exit codes: 0 success, 1 the input was refused, 2 the command line is wrong.
)";

constexpr std::string_view id_help = R"(usage: polyplug id NAME[@MAJOR] [--major N]

Prints bundle_id(NAME) = fnv1a64(NAME), guest_contract_id(NAME, MAJOR) and
host_contract_id(NAME, MAJOR), in hex and decimal. MAJOR defaults to 1.
)";

constexpr std::string_view generate_help =
    R"(usage: polyplug generate --api FILE --lang c|cpp --out DIR [--header NAME] [--namespace NS]

Writes one header for the contract file FILE into DIR (created if missing):
  --lang c    NAME.h: per contract the name, version and id constants, function ids, argument
              structs with layout asserts, and typed call helpers (polyplug/call.h); the file's
              enums, structs and ArrayOf_T types. C11 and C++.
  --lang cpp  NAME.hpp: the contracts declared for the typed C++ API (polyplug/contract.hpp),
              inside namespace NS (default "contracts"; nested names such as app::api work).
NAME defaults to FILE's name without ".toml" and ".api" (calc.api.toml gives calc.h).
The header is written whole or not at all.
)";

constexpr std::string_view manifest_help = R"(usage: polyplug manifest --bundle FILE [--out DIR]

Reads the bundle file FILE (bundle.toml) and the contract file its [bundle] api names, and writes
DIR/manifest.toml (DIR defaults to FILE's directory) with the computed id, provides,
function_count and every dependency's contract_id. The result is checked with the runtime's own
manifest parser before it is written.
)";

constexpr std::string_view validate_help = R"(usage: polyplug validate DIR [--api FILE]
       polyplug validate --api FILE

DIR (or --bundle-dir DIR): checks DIR/manifest.toml against every manifest rule, that the
artifact for this platform exists inside the bundle directory (no escaping path, no symlink out
of it), and for native bundles that the artifact is an ELF shared object for this machine
exporting polyplug_abi_version and polyplug_init; for lua, python and js bundles, that the
contract file their loader reads (the manifest's api, default api.toml) parses and declares every
provided contract with its function count. Nothing of the bundle is loaded or run.
With --api, also that every contract the manifest provides is in FILE with the same function count.
When a bundle.toml lies in DIR, its [bundle] name and [[plugin]] names must be the manifest's.
--api alone: checks the contract file FILE and reports every problem of it, then their count.
)";

constexpr std::string_view inspect_help =
    R"(usage: polyplug inspect DIR [--with PLUGIN_DIR]... [--loader-dir DIR]...

Loads the bundle in DIR into a scratch runtime (this runs the bundle's init) and prints its
contracts (names, versions, ids, dispatch, function counts) and declared dependencies. --with
loads the bundles in PLUGIN_DIR first, for a bundle whose dependencies must be present.
When a bundle.toml lies in DIR, a contract registered under a plugin name that is not one of
its [[plugin]] names gets a warning (the name given to POLYPLUG_EXPORT_BUNDLE).

Native bundles load as they are. A bundle with loader = "lua", "python" or "js" (or any other
name) is loaded through the loader module libpolyplug-loader-<loader>.so, looked for in each
--loader-dir DIR (and DIR/<loader>/) alone when given; otherwise in $POLYPLUG_LOADER_DIR, the
build tree the tool was built in, the installed library directory, and the dynamic loader's
search path.
)";

constexpr std::string_view types_help = R"(usage: polyplug types [--format text|markdown]

Lists every type name a contract file accepts without declaring it (the parser's own table):
the primitives, StringView, Buffer, Ptr, Void and Array<T>, with their C size and alignment in
bytes on this machine and what each is. --format markdown prints the table docs/CLI.md holds.
)";

constexpr std::string_view completion_help = R"(usage: polyplug completion bash

Prints a bash completion script: commands, each command's options, directories after options
and arguments that take one, files after --api and --bundle. Load it with
  source <(polyplug completion bash)
or save it as ~/.local/share/bash-completion/completions/polyplug.
)";

constexpr std::string_view new_help =
    R"(usage: polyplug new NAME --lang c|cpp|rust|lua|python|js [--out DIR]

Creates the bundle folder DIR (default ./NAME) for a new bundle NAME whose plugin is written in
LANG: NAME.api.toml (the contract NAME.greeter@1 with greet() and add(a, b)), bundle.toml (the
input of `polyplug manifest`), a plugin stub that builds and passes `polyplug validate` as
written, its build (c, cpp: meson.build running `polyplug generate` and `polyplug manifest`;
rust: Cargo.toml and build-bundle.sh; lua, python, js: none, the folder is the bundle), host.cpp
(a C++ host that loads the bundle and calls it) and README.md with the commands.

NAME: a letter, then letters, digits, '_' and '-' (at most 64), not a reserved word ('-' becomes
'_' where an identifier is needed). An existing DIR is refused (exit 1); the folder is written
whole or not at all.
)";

/// A command line problem: reported with the command's usage, exit code 2.
struct usage_error {
    std::string message;
};

/// The options of one command: `--name value` pairs and positional words.
class arguments {
public:
    arguments(int argc, char** argv, int first) {
        for (int i = first; i < argc; ++i) words_.emplace_back(argv[i]);
    }

    [[nodiscard]] bool wants_help() const {
        return std::any_of(words_.begin(), words_.end(),
                           [](const std::string& w) { return w == "--help" || w == "-h"; });
    }

    /// Splits the words into options (each in `valued`, taking one value) and positionals.
    void parse(std::initializer_list<std::string_view> valued) {
        for (std::size_t i = 0; i < words_.size(); ++i) {
            const std::string& w = words_[i];
            if (w.size() > 2 && w.starts_with("--")) {
                if (std::find(valued.begin(), valued.end(), w) == valued.end()) {
                    throw usage_error{"unknown option '" + w + "'"};
                }
                if (i + 1 >= words_.size()) throw usage_error{"option '" + w + "' needs a value"};
                options_.emplace_back(w, words_[++i]);
            } else {
                positionals_.push_back(w);
            }
        }
    }

    [[nodiscard]] std::optional<std::string> single(std::string_view option) const {
        std::optional<std::string> found;
        for (const auto& [name, value] : options_) {
            if (name != option) continue;
            if (found) throw usage_error{"option '" + std::string(option) + "' given twice"};
            found = value;
        }
        return found;
    }
    [[nodiscard]] std::string required(std::string_view option) const {
        std::optional<std::string> value = single(option);
        if (!value) throw usage_error{"missing option '" + std::string(option) + "'"};
        return *value;
    }
    [[nodiscard]] std::vector<std::string> all(std::string_view option) const {
        std::vector<std::string> values;
        for (const auto& [name, value] : options_) {
            if (name == option) values.push_back(value);
        }
        return values;
    }
    [[nodiscard]] const std::vector<std::string>& positionals() const { return positionals_; }
    void expect_positionals(std::size_t count, std::string_view what) const {
        if (positionals_.size() < count) throw usage_error{"missing " + std::string(what)};
        if (positionals_.size() > count) {
            throw usage_error{"unexpected argument '" + positionals_[count] + "'"};
        }
    }

private:
    std::vector<std::string> words_;
    std::vector<std::pair<std::string, std::string>> options_;
    std::vector<std::string> positionals_;
};

int refuse(std::string_view command, std::string_view message) {
    std::cerr << "polyplug " << command << ": error: " << message << "\n";
    return exit_refused;
}

/// Writes `text` to `path` through a temporary file and a rename, so readers (a build running in
/// parallel) never see half a file.
void write_whole_file(const fs::path& path, std::string_view text) {
    fs::create_directories(path.parent_path());
    const fs::path temporary = path.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.close();
        if (!out) {
            std::error_code ignored;
            fs::remove(temporary, ignored);
            throw std::runtime_error("cannot write '" + temporary.string() + "'");
        }
    }
    fs::rename(temporary, path);
}

// ---- id ---------------------------------------------------------------------------------------

int run_id(const arguments& args) {
    args.expect_positionals(1, "NAME");
    std::string name = args.positionals()[0];
    std::uint32_t major = 1;
    auto parse_major = [](const std::string& text) -> std::uint32_t {
        if (text.empty() ||
            !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            throw usage_error{"'" + text + "' is not a major version (a number)"};
        }
        if (text.size() > 10) throw usage_error{"major version " + text + " is too large"};
        const unsigned long long value = std::stoull(text);
        if (value > UINT32_MAX) throw usage_error{"major version " + text + " is too large"};
        return static_cast<std::uint32_t>(value);
    };
    if (const std::size_t at = name.rfind('@'); at != std::string::npos) {
        major = parse_major(name.substr(at + 1));
        name.resize(at);
    }
    if (std::optional<std::string> m = args.single("--major")) major = parse_major(*m);
    if (name.empty()) throw usage_error{"the name is empty"};

    auto line = [](std::string_view label, std::uint64_t id, const std::string& how) {
        std::printf("%-16s %s  %20llu  %s\n", std::string(label).c_str(), format_id(id).c_str(),
                    static_cast<unsigned long long>(id), how.c_str());
    };
    const std::string m = std::to_string(major);
    line("bundle", polyplug::bundle_id(name), "fnv1a64(\"" + name + "\")");
    line("guest contract", polyplug::guest_contract_id(name, major),
         "guest_contract_id(\"" + name + "\", " + m + ")");
    line("host contract", polyplug::host_contract_id(name, major),
         "host_contract_id(\"" + name + "\", " + m + ")");
    return exit_ok;
}

// ---- generate ---------------------------------------------------------------------------------

/// calc.api.toml -> calc; api.toml -> api.
std::string default_header_stem(const fs::path& api) {
    std::string stem = api.filename().string();
    for (std::string_view suffix : {".toml"sv, ".api"sv}) {
        if (stem.size() > suffix.size() && stem.ends_with(suffix)) {
            stem.resize(stem.size() - suffix.size());
        }
    }
    return stem;
}

bool is_namespace_name(std::string_view ns) {
    std::size_t start = 0;
    while (true) {
        const std::size_t sep = ns.find("::", start);
        const std::string_view part = ns.substr(start, sep == ns.npos ? ns.npos : sep - start);
        if (!polyplug::is_identifier_syntax(part) || polyplug::is_reserved_word(part)) return false;
        if (sep == ns.npos) return true;
        start = sep + 2;
    }
}

int run_generate(const arguments& args) {
    args.expect_positionals(0, "");
    const fs::path api = args.required("--api");
    const std::string lang = args.required("--lang");
    const fs::path out_dir = args.required("--out");
    const std::string ns = args.single("--namespace").value_or("contracts");
    if (lang != "c" && lang != "cpp") {
        throw usage_error{"unknown language '" + lang + "' for --lang (c or cpp)"};
    }
    if (lang == "c" && args.single("--namespace")) {
        throw usage_error{"--namespace applies to --lang cpp only"};
    }
    if (!is_namespace_name(ns)) {
        throw usage_error{"'" + ns + "' is not a C++ namespace name"};
    }
    std::string stem = args.single("--header").value_or(default_header_stem(api));
    if (!polyplug::is_identifier_syntax(polyplug::tools::underscored(stem))) {
        throw usage_error{"header name '" + stem + "' must be letters, digits, '_' and '.'"};
    }

    polyplug::contract_file file;
    if (polyplug::status s = polyplug::read_contract_file(api, file); !s) {
        return refuse("generate", s.message());
    }
    std::string text;
    try {
        text = lang == "c"
                   ? polyplug::tools::generate_c_header(
                         file, "POLYPLUG_GENERATED_" + polyplug::tools::upper_snake(stem) + "_H")
                   : polyplug::tools::generate_cpp_header(file, ns);
    } catch (const polyplug::tools::generate_error& e) {
        return refuse("generate", e.what());
    }
    const fs::path target = out_dir / (stem + (lang == "c" ? ".h" : ".hpp"));
    write_whole_file(target, text);
    std::printf("wrote %s (%zu guest and %zu host contracts)\n", target.string().c_str(),
                file.guest_contracts.size(), file.host_contracts.size());
    return exit_ok;
}

// ---- manifest ---------------------------------------------------------------------------------

int run_manifest(const arguments& args) {
    args.expect_positionals(0, "");
    const fs::path bundle = args.required("--bundle");
    const fs::path out_dir =
        args.single("--out").value_or(bundle.parent_path().empty() ? "." : bundle.parent_path());
    if (!fs::is_regular_file(bundle)) {
        return refuse("manifest", "'" + bundle.string() + "' is not a file");
    }
    polyplug::tools::generated_manifest result;
    if (polyplug::status s = polyplug::tools::make_manifest(bundle, result); !s) {
        return refuse("manifest", s.message());
    }
    const fs::path target = out_dir / "manifest.toml";
    write_whole_file(target, result.text);
    std::printf("wrote %s (bundle '%s', id %s, %zu contracts provided, %zu dependencies)\n",
                target.string().c_str(), result.parsed.name.c_str(),
                format_id(result.parsed.id).c_str(), result.parsed.provides.size(),
                result.parsed.dependencies.size());
    return exit_ok;
}

// ---- validate ---------------------------------------------------------------------------------

/// Collects the results of the checks and prints them as they come.
class check_list {
public:
    void pass(std::string_view what) { std::printf("  ok: %s\n", std::string(what).c_str()); }
    void fail(std::string_view what) {
        std::printf("  error: %s\n", std::string(what).c_str());
        ++failures_;
    }
    [[nodiscard]] int finish() const {
        if (failures_ == 0) {
            std::printf("valid\n");
            return exit_ok;
        }
        std::printf("invalid: %d problem%s\n", failures_, failures_ == 1 ? "" : "s");
        return exit_refused;
    }

private:
    int failures_ = 0;
};

/// "1 error", "3 errors".
std::string count_of(std::size_t n, std::string_view noun) {
    return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

int validate_api(const fs::path& api) {
    polyplug::contract_file file;
    std::vector<polyplug::status> problems;
    if (!polyplug::read_contract_file(api, file, problems)) {
        for (const polyplug::status& p : problems) (void)refuse("validate", p.message());
        std::cerr << "polyplug validate: " << api.string() << ": "
                  << count_of(problems.size(), "error") << "\n";
        return exit_refused;
    }
    std::printf("%s: valid contract file\n", api.string().c_str());
    for (const std::vector<polyplug::contract_decl>* list :
         {&file.guest_contracts, &file.host_contracts}) {
        for (const polyplug::contract_decl& c : *list) {
            std::printf("  %s contract %s@%u (version %s, id %s): %zu functions\n",
                        c.side == polyplug::contract_side::host ? "host" : "guest", c.name.c_str(),
                        c.version.major, polyplug::tools::version_text(c.version).c_str(),
                        format_id(c.id).c_str(), c.functions.size());
        }
    }
    return exit_ok;
}

void check_native_artifact(check_list& checks, const fs::path& artifact) {
    const polyplug::tools::elf_exports_result elf = polyplug::tools::read_elf_exports(artifact);
    const std::string name = artifact.filename().string();
    if (!elf.ok) {
        checks.fail(name + " cannot be read as a shared library: " + elf.error);
        return;
    }
    constexpr std::uint16_t elf_shared_object = 3;  // ET_DYN
    const std::string machine(polyplug::tools::elf_machine_name(elf.machine));
    if (elf.type != elf_shared_object) {
        checks.fail(name + " is an ELF file but not a shared object (e_type " +
                    std::to_string(elf.type) + ")");
    } else if (elf.machine != polyplug::tools::elf_host_machine()) {
        checks.fail(
            name + " is built for " + machine + ", this machine is " +
            std::string(polyplug::tools::elf_machine_name(polyplug::tools::elf_host_machine())));
    } else {
        checks.pass(name + " is an ELF " + machine + " shared object");
    }
    for (std::string_view symbol : {POLYPLUG_ABI_VERSION_SYMBOL ""sv, POLYPLUG_INIT_SYMBOL ""sv}) {
        const bool found =
            std::find(elf.functions.begin(), elf.functions.end(), symbol) != elf.functions.end();
        if (found) {
            checks.pass(name + " exports " + std::string(symbol));
        } else {
            checks.fail(name + " does not export the function " + std::string(symbol) +
                        " (declare it extern \"C\" with default visibility; see "
                        "polyplug/abi.h)");
        }
    }
}

/// Every contract `m` provides is a guest contract of `file` (read from `label`), with the
/// manifest's function_count.
void check_provides(check_list& checks, const polyplug::manifest& m,
                    const polyplug::contract_file& file, const std::string& label) {
    for (const polyplug::provided_contract& p : m.provides) {
        const polyplug::contract_decl* c = file.find_contract(p.contract_id);
        const auto count = m.function_count.find(p.key());
        if (c == nullptr || c->side != polyplug::contract_side::guest) {
            checks.fail("provided contract " + p.key() + " is not a guest contract of " + label);
        } else if (count != m.function_count.end() && count->second != c->functions.size()) {
            checks.fail("function_count of " + p.key() + " is " + std::to_string(count->second) +
                        ", the contract file has " + std::to_string(c->functions.size()) +
                        " functions");
        } else {
            checks.pass(p.key() + " matches " + label);
        }
    }
}

/// A VM bundle's loader reads the contract file its manifest's `api` names (api.toml without
/// one) from inside the bundle directory and binds every provided contract from it: the same
/// reading here, with the project's contract-file parser, catches what would fail at load.
void check_vm_contract_file(check_list& checks, const polyplug::manifest& m) {
    const fs::path relative = m.api.empty() ? fs::path("api.toml") : fs::path(m.api);
    const std::string shown = relative.string();
    if (polyplug::detail::escapes_lexically(relative)) {
        checks.fail("api path '" + shown + "' escapes the bundle directory");
        return;
    }
    polyplug::contract_file file;
    std::vector<polyplug::status> problems;
    if (!polyplug::read_contract_file(m.dir / relative, file, problems)) {
        for (const polyplug::status& p : problems) {
            checks.fail(p.message() + (m.api.empty() ? " (the manifest names no 'api', so its "
                                                       "loader reads api.toml)"
                                                     : ""));
        }
        return;
    }
    checks.pass("contract file " + shown + " is valid");
    check_provides(checks, m, file, shown);
    std::printf(
        "  note: the script's functions are bound by the %s loader at load (polyplug "
        "inspect)\n",
        m.loader.c_str());
}

/// The names a bundle file or manifest gives: the bundle's (`[bundle] name` in bundle.toml,
/// top-level `name` in manifest.toml) and every `[[plugin]] name`, each with its line.
struct declared_names {
    std::string bundle;
    std::uint32_t bundle_line = 0;
    std::vector<std::pair<std::string, std::uint32_t>> plugins;
};

/// Reads the names from `file` with toml++ alone (nothing else of the file is checked here);
/// an error message when the file cannot be read as TOML.
std::optional<std::string> read_declared_names(const fs::path& file, bool bundle_file,
                                               declared_names& out) {
    // Read as the runtime reads manifests: bounded in size, and checked for nesting before
    // toml++ recurses over it (the file is input from the bundle's author).
    std::ifstream in(file, std::ios::binary);
    std::string text;
    char chunk[4096];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
        text.append(chunk, static_cast<std::size_t>(in.gcount()));
        if (text.size() > polyplug::max_manifest_bytes) {
            return file.string() + ": larger than " + std::to_string(polyplug::max_manifest_bytes) +
                   " bytes";
        }
    }
    if (in.bad() || (!in.eof() && !in)) return file.string() + ": cannot be read";
    if (const auto excess = polyplug::detail::find_toml_nesting_excess(text)) {
        return file.string() + ":" + std::to_string(excess->where.line) + ":" +
               std::to_string(excess->where.column) + ": " + excess->problem();
    }
    toml::table document;
    try {
        document = toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        return file.string() + ":" + std::to_string(e.source().begin.line) + ":" +
               std::to_string(e.source().begin.column) +
               ": TOML syntax error: " + std::string(e.description());
    }
    const toml::node* name =
        bundle_file ? document.at_path("bundle.name").node() : document.get("name");
    if (name != nullptr && name->is_string()) {
        out.bundle = name->as_string()->get();
        out.bundle_line = static_cast<std::uint32_t>(name->source().begin.line);
    }
    if (const toml::array* plugins = document.get_as<toml::array>("plugin")) {
        for (const toml::node& plugin : *plugins) {
            const toml::table* table = plugin.as_table();
            const toml::node* plugin_name = table == nullptr ? nullptr : table->get("name");
            if (plugin_name != nullptr && plugin_name->is_string()) {
                out.plugins.emplace_back(
                    plugin_name->as_string()->get(),
                    static_cast<std::uint32_t>(plugin_name->source().begin.line));
            }
        }
    }
    return std::nullopt;
}

/// "'a' (bundle.toml:9), 'b' (bundle.toml:12)"
std::string plugin_list(const declared_names& names, const fs::path& file) {
    std::string text;
    for (const auto& [name, line] : names.plugins) {
        text += (text.empty() ? "'" : ", '") + name + "' (" + file.string() + ":" +
                std::to_string(line) + ")";
    }
    return text.empty() ? "none" : text;
}

/// The bundle name and the [[plugin]] names must agree between manifest.toml and the
/// bundle.toml it was generated from, when that lies in the bundle directory too. The plugin
/// name a native plugin registers under (POLYPLUG_EXPORT_BUNDLE's argument) is a string its
/// init passes at run time, not a symbol: it is not read here (inspect lists it).
void check_names(check_list& checks, const polyplug::manifest& m) {
    const fs::path manifest_path = m.dir / "manifest.toml";
    const fs::path bundle_path = m.dir / "bundle.toml";
    declared_names in_manifest;
    // The runtime's parser has read the manifest already; toml++ alone refuses what that parser
    // accepts (an id above 2^63 - 1 as a bare integer): then the manifest has no plugin names.
    (void)read_declared_names(manifest_path, false, in_manifest);
    std::error_code ec;
    if (!fs::is_regular_file(bundle_path, ec)) return;
    declared_names in_bundle;
    if (std::optional<std::string> error = read_declared_names(bundle_path, true, in_bundle)) {
        checks.fail("bundle.toml beside the manifest cannot be read: " + *error);
        return;
    }
    const std::string manifest_where =
        manifest_path.string() + ":" + std::to_string(in_manifest.bundle_line);
    const std::string bundle_where =
        bundle_path.string() + ":" + std::to_string(in_bundle.bundle_line);
    if (in_bundle.bundle.empty()) {
        checks.fail("bundle.toml beside the manifest has no [bundle] name (" +
                    bundle_path.string() + ")");
    } else if (in_bundle.bundle != m.name) {
        checks.fail("bundle name '" + m.name + "' (name in " + manifest_where + ") differs from '" +
                    in_bundle.bundle + "' ([bundle] name in " + bundle_where +
                    "): the manifest is out of date; regenerate it with polyplug manifest");
    } else {
        checks.pass("bundle name '" + m.name + "' is the same in manifest.toml and bundle.toml");
    }
    if (in_manifest.plugins.empty()) return;  // manifests polyplug writes carry no [[plugin]]
    auto sorted_names = [](const declared_names& names) {
        std::vector<std::string> list;
        for (const auto& p : names.plugins) list.push_back(p.first);
        std::sort(list.begin(), list.end());
        return list;
    };
    if (sorted_names(in_manifest) != sorted_names(in_bundle)) {
        checks.fail("[[plugin]] names differ: " + plugin_list(in_manifest, manifest_path) +
                    " in the manifest, " + plugin_list(in_bundle, bundle_path) + " in bundle.toml");
    } else {
        checks.pass("[[plugin]] names are the same in manifest.toml and bundle.toml");
    }
}

int run_validate(const arguments& args) {
    // The bundle directory is positional, as for inspect; --bundle-dir DIR is the older spelling.
    std::optional<std::string> dir = args.single("--bundle-dir");
    if (!args.positionals().empty()) {
        if (dir) {
            throw usage_error{"the bundle directory is given twice ('" + args.positionals()[0] +
                              "' and --bundle-dir " + *dir + ")"};
        }
        args.expect_positionals(1, "");
        dir = args.positionals()[0];
    }
    const std::optional<std::string> api = args.single("--api");
    if (!dir && !api) throw usage_error{"give a bundle directory DIR, --api FILE, or both"};
    if (!dir) return validate_api(*api);

    polyplug::manifest m;
    if (polyplug::status s = polyplug::read_manifest(*dir, m); !s) {
        std::printf("bundle in %s\n", dir->c_str());
        check_list checks;
        checks.fail(s.message());
        return checks.finish();
    }
    std::printf("bundle '%s' %s (id %s, loader %s) in %s\n", m.name.c_str(),
                polyplug::tools::version_text(m.version).c_str(), format_id(m.id).c_str(),
                m.loader.c_str(), dir->c_str());
    check_list checks;
    checks.pass("manifest.toml follows every manifest rule");
    check_names(checks, m);

    fs::path artifact;
    if (polyplug::status s = polyplug::resolve_artifact(m, false, artifact); !s) {
        checks.fail(s.message());
    } else if (!fs::is_regular_file(artifact)) {
        checks.fail("artifact '" + artifact.string() + "' is not a regular file");
    } else {
        checks.pass("artifact " + m.file + " is present in the bundle directory");
        if (m.loader == "native") check_native_artifact(checks, artifact);
    }
    if (polyplug::tools::is_shipped_vm_loader(m.loader)) {
        check_vm_contract_file(checks, m);
    } else if (!polyplug::tools::is_builtin_loader(m.loader)) {
        std::printf(
            "  note: '%s' is not a loader polyplug ships (native, lua, python, js); only "
            "a host that registers it can load this bundle\n",
            m.loader.c_str());
    }
    for (const polyplug::provided_contract& p : m.provides) {
        if (!m.function_count.contains(p.key())) {
            std::printf("  note: no function_count for %s: Strict mode cannot check the table\n",
                        p.key().c_str());
        }
    }

    if (api) {
        polyplug::contract_file file;
        std::vector<polyplug::status> problems;
        if (!polyplug::read_contract_file(*api, file, problems)) {
            for (const polyplug::status& p : problems) checks.fail(p.message());
        } else {
            check_provides(checks, m, file, *api);
        }
    }
    return checks.finish();
}

// ---- inspect ----------------------------------------------------------------------------------

int run_inspect(const arguments& args) {
    args.expect_positionals(1, "DIR (the bundle directory)");
    const fs::path dir = args.positionals()[0];
    polyplug::runtime_options options;
    std::vector<std::string> log;
    options.log = [&](polyplug::log_level level, std::string_view scope, std::string_view text) {
        log.push_back(std::string(level == polyplug::log_level::error ? "error" : "warning") +
                      " [" + std::string(scope) + "] " + std::string(text));
    };
    polyplug::runtime rt(options);
    std::vector<fs::path> loader_dirs;
    for (const std::string& d : args.all("--loader-dir")) loader_dirs.emplace_back(d);
    std::vector<std::string> registered;
    // The loader a bundle names, from its module unless the runtime has it built in. Only the
    // bundle's own manifest is read here; the load itself reports everything else about it.
    auto add_loader_of = [&](const fs::path& bundle_dir) -> polyplug::status {
        polyplug::manifest m;
        if (!polyplug::read_manifest(bundle_dir, m)) return {};
        if (polyplug::tools::is_builtin_loader(m.loader) ||
            std::find(registered.begin(), registered.end(), m.loader) != registered.end()) {
            return {};
        }
        std::string where;
        if (polyplug::status s = polyplug::tools::register_loader_module(rt.host_api(), m.loader,
                                                                         loader_dirs, where);
            !s) {
            return {s.code(),
                    "bundle '" + m.name + "' has loader = \"" + m.loader + "\": " + s.message()};
        }
        registered.push_back(m.loader);
        return {};
    };
    for (const std::string& with : args.all("--with")) {
        if (!fs::is_directory(with)) {
            return refuse("inspect", "--with " + with + " is not a directory");
        }
        std::error_code ec;
        for (const fs::directory_entry& e : fs::directory_iterator(with, ec)) {
            if (!e.is_directory(ec)) continue;
            if (polyplug::status s = add_loader_of(e.path()); !s) {
                return refuse("inspect", s.message());
            }
        }
        const fs::path with_dir = with;
        (void)rt.load_dirs(std::span(&with_dir, 1), ec);
        if (ec) return refuse("inspect", "loading --with " + with + ": " + rt.last_error());
    }
    if (polyplug::status s = add_loader_of(dir); !s) return refuse("inspect", s.message());
    std::error_code ec;
    rt.load_bundle(dir, ec);
    for (const std::string& line : log) std::fprintf(stderr, "%s\n", line.c_str());
    if (ec) return refuse("inspect", rt.last_error());

    polyplug::manifest m;
    if (polyplug::status s = polyplug::read_manifest(dir, m); !s) {
        return refuse("inspect", s.message());
    }
    const std::optional<polyplug::bundle_info> info = rt.bundle(m.id);
    if (!info) return refuse("inspect", "the bundle loaded but the runtime does not list it");
    std::printf("bundle '%s' %s (id %s, loader %s)\n", info->name.c_str(),
                polyplug::tools::version_text(info->version).c_str(), format_id(info->id).c_str(),
                info->loader.c_str());
    std::printf("  directory: %s\n", info->dir.string().c_str());
    std::printf("  contracts: %zu\n", info->contracts.size());
    for (const polyplug::contract_info& c : info->contracts) {
        const bool native = c.dispatch_type == DispatchType_Native;
        std::printf("    %s %s (id %s) from plugin '%s': %s", c.contract_name.c_str(),
                    polyplug::tools::version_text(c.version).c_str(),
                    format_id(c.contract_id).c_str(), c.plugin_name.c_str(),
                    native ? "native" : "VM");
        if (native) std::printf(", %u functions", c.function_count);
        std::printf("\n");
    }
    // The plugin name the bundle registered under is known only now that its init ran: the
    // third of the names validate cannot read (docs/CLI.md, "The three names").
    declared_names in_bundle;
    std::error_code exists_ec;
    if (fs::is_regular_file(dir / "bundle.toml", exists_ec) &&
        !read_declared_names(dir / "bundle.toml", true, in_bundle) && !in_bundle.plugins.empty()) {
        for (const polyplug::contract_info& c : info->contracts) {
            const bool declared =
                std::any_of(in_bundle.plugins.begin(), in_bundle.plugins.end(),
                            [&](const auto& p) { return p.first == c.plugin_name; });
            if (!declared) {
                std::printf(
                    "  warning: %s is registered by plugin '%s', which is not a [[plugin]] name "
                    "of bundle.toml (%s); check the name given to POLYPLUG_EXPORT_BUNDLE\n",
                    c.contract_name.c_str(), c.plugin_name.c_str(),
                    plugin_list(in_bundle, dir / "bundle.toml").c_str());
            }
        }
    }
    std::printf("  dependencies: %zu\n", info->dependencies.size());
    for (const polyplug::manifest_dependency& d : info->dependencies) {
        std::printf("    %s@%u (id %s)%s%s\n", d.contract.c_str(), d.major,
                    format_id(d.contract_id).c_str(), d.bundle.empty() ? "" : " from bundle ",
                    d.bundle.c_str());
    }
    return exit_ok;
}

// ---- types ------------------------------------------------------------------------------------

int run_types(const arguments& args) {
    args.expect_positionals(0, "");
    const std::string format = args.single("--format").value_or("text");
    if (format != "text" && format != "markdown") {
        throw usage_error{"unknown format '" + format + "' for --format (text or markdown)"};
    }
    struct row {
        std::string name, size, align;
        std::string_view description;
    };
    std::vector<row> rows;
    auto number = [](std::uint32_t n) { return n == 0 ? std::string("-") : std::to_string(n); };
    for (const polyplug::detail::api_toml::builtin& b : polyplug::detail::api_toml::builtins) {
        rows.push_back(
            {std::string(b.name), number(b.type.size), number(b.type.align), b.description});
    }
    for (const polyplug::detail::api_toml::type_form& f : polyplug::detail::api_toml::type_forms) {
        rows.push_back({std::string(f.name), number(f.size), number(f.align), f.description});
    }
    if (format == "markdown") {
        std::printf("| Type | Size | Align | Description |\n|---|---|---|---|\n");
        for (const row& r : rows) {
            std::printf("| `%s` | %s | %s | %s |\n", r.name.c_str(), r.size.c_str(),
                        r.align.c_str(), std::string(r.description).c_str());
        }
        return exit_ok;
    }
    std::printf("%-12s %4s %5s  %s\n", "TYPE", "SIZE", "ALIGN", "DESCRIPTION");
    for (const row& r : rows) {
        std::printf("%-12s %4s %5s  %s\n", r.name.c_str(), r.size.c_str(), r.align.c_str(),
                    std::string(r.description).c_str());
    }
    std::printf(
        "\nAlso the name of every [[types]] struct (by value, C layout) and [[enum]] (carried as "
        "its repr) of the file.\n");
    return exit_ok;
}

// ---- new ------------------------------------------------------------------------------------

int run_new(const arguments& args) {
    namespace scaffold = polyplug::tools;
    args.expect_positionals(1, "NAME (the new bundle's name)");
    const std::string name = args.positionals()[0];
    const std::string lang = args.required("--lang");
    const std::optional<scaffold::scaffold_language> language =
        scaffold::parse_scaffold_language(lang);
    if (!language) {
        throw usage_error{"unknown language '" + lang + "' for --lang (one of " +
                          scaffold::scaffold_language_list() + ")"};
    }
    if (const std::string problem = scaffold::scaffold_name_problem(name); !problem.empty()) {
        throw usage_error{"'" + name + "' cannot name a bundle: " + problem};
    }
    const fs::path dir = args.single("--out").value_or(name);
    const std::vector<scaffold::scaffold_file> files = scaffold::scaffold_files(name, *language);
    scaffold::write_scaffold(dir, files);  // refuses an existing dir
    std::printf("created %s: bundle '%s' in %s, providing %s@1\n", dir.string().c_str(),
                name.c_str(), lang.c_str(), scaffold::scaffold_contract_name(name).c_str());
    for (const scaffold::scaffold_file& f : files) {
        std::printf("  %s\n", (dir / f.path).string().c_str());
    }
    std::printf("next: %s says how to build, validate and run it\n",
                (dir / "README.md").string().c_str());
    return exit_ok;
}

// ---- dispatch ---------------------------------------------------------------------------------

struct command {
    std::string_view name;
    std::string_view help;
    std::initializer_list<std::string_view> options;
    int (*run)(const arguments&);
};

int run_completion(const arguments& args);

const command commands[] = {
    {"id", id_help, {"--major"}, run_id},
    {"generate",
     generate_help,
     {"--api", "--lang", "--out", "--header", "--namespace"},
     run_generate},
    {"manifest", manifest_help, {"--bundle", "--out"}, run_manifest},
    {"validate", validate_help, {"--bundle-dir", "--api"}, run_validate},
    {"inspect", inspect_help, {"--with", "--loader-dir"}, run_inspect},
    {"types", types_help, {"--format"}, run_types},
    {"completion", completion_help, {}, run_completion},
    {"new", new_help, {"--lang", "--out"}, run_new},
};

// ---- completion -------------------------------------------------------------------------------

/// What bash offers after `option`: a compgen action.
std::string_view completion_of_value(std::string_view option) {
    if (option == "--api" || option == "--bundle") return "-f";
    if (option == "--out" || option == "--bundle-dir" || option == "--with" ||
        option == "--loader-dir") {
        return "-d";
    }
    if (option == "--lang") return "-W 'c cpp'";
    if (option == "--format") return "-W 'text markdown'";
    return "";  // a name or a number: nothing to offer
}

/// What bash offers for a command's positional arguments.
std::string_view completion_of_positionals(std::string_view command_name) {
    if (command_name == "validate" || command_name == "inspect") return "-d";
    if (command_name == "completion") return "-W 'bash'";
    return "";
}

int run_completion(const arguments& args) {
    args.expect_positionals(1, "the shell (bash)");
    if (args.positionals()[0] != "bash") {
        throw usage_error{"no completion for '" + args.positionals()[0] + "' (only bash)"};
    }
    // Built from the command table, so a new command or option is offered without editing this.
    std::string names;
    std::map<std::string_view, std::vector<std::string_view>> by_action;  // action -> options
    std::string per_command;
    for (const command& c : commands) {
        names += std::string(c.name) + " ";
        std::string options;
        for (std::string_view o : c.options) {
            options += std::string(o) + " ";
            std::vector<std::string_view>& list = by_action[completion_of_value(o)];
            if (std::find(list.begin(), list.end(), o) == list.end()) list.push_back(o);
        }
        per_command += "        " + std::string(c.name) + ") options=\"" + options +
                       "--help\"; positional=\"" + std::string(completion_of_positionals(c.name)) +
                       "\" ;;\n";
    }
    std::string by_previous;
    for (const auto& [action, options] : by_action) {
        std::string pattern;
        for (std::string_view o : options) pattern += (pattern.empty() ? "" : "|") + std::string(o);
        by_previous += "        " + pattern + ") ";
        by_previous += action.empty() ? "COMPREPLY=()"
                                      : "mapfile -t COMPREPLY < <(compgen " + std::string(action) +
                                            " -- \"$cur\")";
        by_previous += "; return ;;\n";
    }
    std::printf(R"sh(# bash completion for polyplug (polyplug completion bash)
_polyplug() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="%s"
    if (( COMP_CWORD == 1 )); then
        mapfile -t COMPREPLY < <(compgen -W "$commands--help --version help" -- "$cur")
        return
    fi
    case $prev in
%s    esac
    local options="" positional=""
    case ${COMP_WORDS[1]} in
%s        help) positional="-W '$commands'" ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    elif [[ -n $positional ]]; then
        eval "mapfile -t COMPREPLY < <(compgen $positional -- \"\$cur\")"
    else
        COMPREPLY=()
    fi
}
complete -o filenames -F _polyplug polyplug
)sh",
                names.c_str(), by_previous.c_str(), per_command.c_str());
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(overview.data(), stderr);
        return exit_usage;
    }
    const std::string_view name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        if (argc >= 3) {
            for (const command& c : commands) {
                if (c.name == argv[2]) {
                    std::fputs(c.help.data(), stdout);
                    return exit_ok;
                }
            }
        }
        std::fputs(overview.data(), stdout);
        return exit_ok;
    }
    if (name == "--version") {
        // The project version as meson knows it (tools/meson.build); the header's numbers stand
        // in when the tool is compiled by hand.
#ifdef POLYPLUG_TOOL_VERSION
        std::printf("polyplug %s (C ABI %u)\n", POLYPLUG_TOOL_VERSION, POLYPLUG_ABI_VERSION);
#else
        std::printf("polyplug %d.%d.%d (C ABI %u)\n", POLYPLUG_VERSION_MAJOR,
                    POLYPLUG_VERSION_MINOR, POLYPLUG_VERSION_PATCH, POLYPLUG_ABI_VERSION);
#endif
        return exit_ok;
    }
    const command* chosen = nullptr;
    std::vector<std::string_view> names;
    for (const command& c : commands) {
        names.push_back(c.name);
        if (c.name == name) chosen = &c;
    }
    if (chosen == nullptr) {
        std::fprintf(stderr, "polyplug: unknown command '%s'%s\n\n%s", argv[1],
                     polyplug::detail::api_toml::did_you_mean(
                         polyplug::detail::api_toml::closest(name, names))
                         .c_str(),
                     overview.data());
        return exit_usage;
    }
    arguments args(argc, argv, 2);
    if (args.wants_help()) {
        std::fputs(chosen->help.data(), stdout);
        return exit_ok;
    }
    try {
        args.parse(chosen->options);
        return chosen->run(args);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "polyplug %s: %s\n\n%s", argv[1], e.message.c_str(),
                     chosen->help.data());
        return exit_usage;
    } catch (const std::system_error& e) {
        // what() is "<message>: <the code's message>"; the message says it already (a trailing
        // ": invalid manifest" after a specific complaint), so it is dropped.
        std::string text = e.what();
        const std::string suffix = ": " + e.code().message();
        if (text.size() > suffix.size() && text.ends_with(suffix)) {
            text.resize(text.size() - suffix.size());
        }
        return refuse(name, text);
    } catch (const std::exception& e) {
        return refuse(name, e.what());
    }
}
