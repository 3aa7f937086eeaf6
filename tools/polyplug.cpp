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
--api alone: checks the contract file FILE.
)";

constexpr std::string_view inspect_help =
    R"(usage: polyplug inspect DIR [--with PLUGIN_DIR]... [--loader-dir DIR]...

Loads the bundle in DIR into a scratch runtime (this runs the bundle's init) and prints its
contracts (names, versions, ids, dispatch, function counts) and declared dependencies. --with
loads the bundles in PLUGIN_DIR first, for a bundle whose dependencies must be present.

Native bundles load as they are. A bundle with loader = "lua", "python" or "js" (or any other
name) is loaded through the loader module libpolyplug-loader-<loader>.so, looked for in each
--loader-dir DIR (and DIR/<loader>/) alone when given; otherwise in $POLYPLUG_LOADER_DIR, the
build tree the tool was built in, the installed library directory, and the dynamic loader's
search path.
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

int validate_api(const fs::path& api) {
    polyplug::contract_file file;
    if (polyplug::status s = polyplug::read_contract_file(api, file); !s) {
        return refuse("validate", s.message());
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
    if (polyplug::status s = polyplug::read_contract_file(m.dir / relative, file); !s) {
        checks.fail(
            s.message() +
            (m.api.empty() ? " (the manifest names no 'api', so its loader reads api.toml)" : ""));
        return;
    }
    checks.pass("contract file " + shown + " is valid");
    check_provides(checks, m, file, shown);
    std::printf(
        "  note: the script's functions are bound by the %s loader at load (polyplug "
        "inspect)\n",
        m.loader.c_str());
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
        if (polyplug::status s = polyplug::read_contract_file(*api, file); !s) {
            checks.fail(s.message());
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
    std::printf("  dependencies: %zu\n", info->dependencies.size());
    for (const polyplug::manifest_dependency& d : info->dependencies) {
        std::printf("    %s@%u (id %s)%s%s\n", d.contract.c_str(), d.major,
                    format_id(d.contract_id).c_str(), d.bundle.empty() ? "" : " from bundle ",
                    d.bundle.c_str());
    }
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

const command commands[] = {
    {"id", id_help, {"--major"}, run_id},
    {"generate",
     generate_help,
     {"--api", "--lang", "--out", "--header", "--namespace"},
     run_generate},
    {"manifest", manifest_help, {"--bundle", "--out"}, run_manifest},
    {"validate", validate_help, {"--bundle-dir", "--api"}, run_validate},
    {"inspect", inspect_help, {"--with", "--loader-dir"}, run_inspect},
    {"new", new_help, {"--lang", "--out"}, run_new},
};

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
