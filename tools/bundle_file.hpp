// SPDX-License-Identifier: MIT
/// @file bundle_file.hpp
/// `bundle.toml`, the plugin author's build input (spec 13.2), turned into the `manifest.toml` the
/// runtime reads: `id` computed from the name, `provides` and `function_count` from the contract
/// file the bundle implements, every dependency's `contract_id` computed. The manifest written is
/// read back with the runtime's own parser before it is returned, so it always loads.
#pragma once

#include "generate_common.hpp"

#include <polyplug/contract_file.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/manifest.hpp>

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace polyplug::tools {

namespace detail_bundle {

// The contract-file reader's table helpers give bundle.toml the same messages, positions and
// did-you-mean hints as api.toml.
using polyplug::detail::api_toml::entry;
using polyplug::detail::api_toml::reporter;

/// "name@1", "name@1.2", "name@1.2.3": the contract and the version it implements.
struct implements_ref {
    std::string name;
    polyplug::version version;
    bool has_minor = false;
};

[[nodiscard]] inline status parse_implements(const entry& at, const toml::node& node,
                                             implements_ref& out) {
    const auto* text = node.as_string();
    if (text == nullptr) return at.fail_at(node, "each entry of 'implements' must be a string");
    const std::string& spec = text->get();
    const std::size_t at_sign = spec.find('@');
    if (at_sign == std::string::npos || at_sign == 0 || at_sign + 1 == spec.size()) {
        return at.fail_at(node, "'" + spec +
                                    "' must name a contract and its version, as "
                                    "'pipeline.Decoder@1' or 'pipeline.Decoder@1.2'");
    }
    out.name = spec.substr(0, at_sign);
    const std::string version = spec.substr(at_sign + 1);
    out.has_minor = version.find('.') != std::string::npos;
    // version::parse wants major.minor; a bare major means minor 0.
    const auto parsed = polyplug::version::parse(out.has_minor ? version : version + ".0");
    if (!parsed) {
        return at.fail_at(
            node, "'" + version + "' in '" + spec + "' is not a version (major[.minor[.patch]])");
    }
    out.version = *parsed;
    return {};
}

/// The [bundle] `file`: one string, or a table `<os>.<arch> = "..."`, copied as TOML text.
[[nodiscard]] inline status read_file_entry(const entry& bundle, std::string& out_line,
                                            std::string& out_table) {
    const toml::node* file = bundle.find("file");
    if (file == nullptr) return bundle.fail("[bundle] has no 'file' (the artifact to load)");
    if (const auto* text = file->as_string()) {
        if (text->get().empty()) return bundle.fail_at(*file, "'file' is empty");
        out_line = "file = " + polyplug::detail::toml_string(text->get()) + "\n";
        return {};
    }
    const toml::table* platforms = file->as_table();
    if (platforms == nullptr) {
        return bundle.wrong_type("file", "a string or a table of platforms", *file);
    }
    out_table = "\n[file]\n";
    for (const auto& [os, arches] : *platforms) {
        const toml::table* per_arch = arches.as_table();
        if (per_arch == nullptr) {
            return bundle.fail_at(
                arches, "'file." + std::string(os.str()) + "' must be a table of architectures");
        }
        for (const auto& [arch, path] : *per_arch) {
            const auto* text = path.as_string();
            if (text == nullptr) {
                return bundle.fail_at(path, "'file." + std::string(os.str()) + "." +
                                                std::string(arch.str()) + "' must be a string");
            }
            out_table += std::string(os.str()) + "." + std::string(arch.str()) + " = " +
                         polyplug::detail::toml_string(text->get()) + "\n";
        }
    }
    return {};
}

}  // namespace detail_bundle

/// What `polyplug manifest` produced: the manifest text and the manifest it parses to.
struct generated_manifest {
    std::string text;
    manifest parsed;
};

/// Reads `bundle_toml` and the contract file it names, and builds the manifest.
/// Errors (errc::contract_file_invalid for bundle.toml problems, with file:line:column; the
/// contract file's and the manifest parser's own errors otherwise).
[[nodiscard]] inline status make_manifest(const std::filesystem::path& bundle_toml,
                                          generated_manifest& out) {
    using detail_bundle::entry;
    const std::string source = bundle_toml.string();
    const detail_bundle::reporter report(source);
    std::ifstream in(bundle_toml, std::ios::binary);
    if (!in) return report.whole_file("cannot open the file for reading");
    std::stringstream buffer;
    buffer << in.rdbuf();
    // The contract file's pre-scan first: toml++ recurses over deep dotted keys and headers.
    if (const auto excess = polyplug::detail::find_toml_nesting_excess(buffer.str())) {
        return report.at({excess->where.line, excess->where.column}, excess->problem());
    }
    toml::table document;
    try {
        document = toml::parse(buffer.str(), source);
    } catch (const toml::parse_error& e) {
        return report.at(polyplug::detail::api_toml::position_of(e.source()),
                         "TOML syntax error: " + std::string(e.description()));
    }
    const entry top(report, document, "the bundle file");
    if (status s = top.check_keys({"bundle", "plugin", "dependency"}); !s) return s;
    const toml::table* bundle_table = document["bundle"].as_table();
    if (bundle_table == nullptr) return top.fail("the bundle file has no [bundle] table");
    const entry bundle(report, *bundle_table, "[bundle]");
    if (status s = bundle.check_keys({"name", "version", "api", "loader", "file",
                                      "needs_reinit_on_dep_reload", "bundle_dependencies"});
        !s) {
        return s;
    }
    std::string name, version, api, loader;
    bool reinit = false;
    if (status s = bundle.string("name", true, name); !s) return s;
    if (status s = bundle.string("version", false, version); !s) return s;
    if (status s = bundle.string("api", false, api); !s) return s;
    if (status s = bundle.string("loader", true, loader); !s) return s;
    if (status s = bundle.boolean("needs_reinit_on_dep_reload", reinit); !s) return s;
    std::string file_line, file_table;
    if (status s = detail_bundle::read_file_entry(bundle, file_line, file_table); !s) return s;
    // VM loaders read the contract file named by the manifest's `api` at load (api.toml when
    // absent), so a script bundle's `api` is kept; a native bundle's contract file is a build
    // input only, its path relative to bundle.toml rather than to the bundle directory.
    const bool vm_bundle = loader != "native";
    if (!api.empty()) {
        const toml::node& api_node = *bundle.find("api");
        const std::filesystem::path relative = api;
        if (vm_bundle && polyplug::detail::escapes_lexically(relative)) {
            return bundle.fail_at(api_node, "'api' path '" + api +
                                                "' leaves the bundle directory; a '" + loader +
                                                "' bundle's contract file must be inside it");
        }
        const std::filesystem::path api_path = bundle_toml.parent_path() / relative;
        std::error_code ec;
        if (!std::filesystem::exists(api_path, ec)) {
            return bundle.fail_at(api_node, "the contract file '" + api_path.string() +
                                                "' named by 'api' does not exist");
        }
        if (!std::filesystem::is_regular_file(api_path, ec)) {
            return bundle.fail_at(api_node, "the contract file '" + api_path.string() +
                                                "' named by 'api' is not a file");
        }
    }

    std::vector<std::string> bundle_dependencies;
    if (const toml::node* deps = bundle.find("bundle_dependencies")) {
        const toml::array* list = deps->as_array();
        if (list == nullptr) return bundle.wrong_type("bundle_dependencies", "an array", *deps);
        for (const toml::node& d : *list) {
            const auto* text = d.as_string();
            if (text == nullptr) return bundle.fail_at(d, "bundle dependencies must be strings");
            bundle_dependencies.push_back(text->get());
        }
    }

    // The contracts implemented, checked against the contract file.
    const toml::array* plugins = nullptr;
    if (status s = top.tables("plugin", false, "[[plugin]]", plugins); !s) return s;
    std::optional<contract_file> contracts;
    std::vector<std::string> provides;
    std::string counts;
    if (plugins != nullptr) {
        for (const toml::node& plugin_node : *plugins) {
            const entry plugin(report, *plugin_node.as_table(), "a [[plugin]] entry");
            if (status s = plugin.check_keys({"name", "implements"}); !s) return s;
            std::string plugin_name;
            if (status s = plugin.string("name", true, plugin_name); !s) return s;
            const toml::node* implements = plugin.find("implements");
            if (implements == nullptr || !implements->is_array()) {
                return plugin.fail("plugin '" + plugin_name +
                                   "' needs 'implements', an array such as "
                                   "[\"pipeline.Decoder@1\"]");
            }
            for (const toml::node& spec_node : *implements->as_array()) {
                detail_bundle::implements_ref ref;
                if (status s = detail_bundle::parse_implements(plugin, spec_node, ref); !s) {
                    return s;
                }
                if (api.empty()) {
                    return bundle.fail("[bundle] has no 'api' (the contract file of '" + ref.name +
                                       "'), which 'implements' needs");
                }
                if (!contracts) {
                    contract_file parsed;
                    const std::filesystem::path api_path = bundle_toml.parent_path() / api;
                    if (status s = read_contract_file(api_path, parsed); !s) return s;
                    contracts = std::move(parsed);
                }
                const contract_decl* decl = nullptr;
                std::vector<std::string> names;
                for (const contract_decl& c : contracts->guest_contracts) {
                    names.push_back(c.name);
                    if (c.name == ref.name && c.version.major == ref.version.major) decl = &c;
                }
                if (decl == nullptr) {
                    return plugin.fail_at(
                        spec_node, "the contract file '" + contracts->source +
                                       "' has no guest contract " + ref.name + "@" +
                                       std::to_string(ref.version.major) +
                                       polyplug::detail::api_toml::did_you_mean(
                                           polyplug::detail::api_toml::closest(ref.name, names)));
                }
                if (ref.has_minor && ref.version.minor > decl->version.minor) {
                    return plugin.fail_at(spec_node, "'" + ref.name + "' is at version " +
                                                         version_text(decl->version) +
                                                         " in the contract file; a plugin "
                                                         "cannot implement a later minor");
                }
                const std::string key = decl->name + "@" + std::to_string(decl->version.major);
                provides.push_back(key);
                counts += (counts.empty() ? " " : ", ") + polyplug::detail::toml_string(key) +
                          " = " + std::to_string(decl->functions.size());
            }
        }
    }

    // Dependencies are copied; the manifest parser computes each contract_id, written below.
    std::string dependencies;
    const toml::array* deps = nullptr;
    if (status s = top.tables("dependency", false, "[[dependency]]", deps); !s) return s;
    if (deps != nullptr) {
        for (const toml::node& dep_node : *deps) {
            const entry dep(report, *dep_node.as_table(), "a [[dependency]] entry");
            if (status s = dep.check_keys({"kind", "contract", "min_version", "bundle"}); !s) {
                return s;
            }
            dependencies += "\n[[dependency]]\n";
            for (const char* key : {"kind", "contract", "min_version", "bundle"}) {
                std::string value;
                if (status s = dep.string(key, std::string_view(key) == "contract", value); !s) {
                    return s;
                }
                if (!value.empty()) {
                    dependencies +=
                        std::string(key) + " = " + polyplug::detail::toml_string(value) + "\n";
                }
            }
        }
    }

    auto header = [&](const manifest* computed) {
        std::string text = "# Generated by `polyplug manifest` from " +
                           bundle_toml.filename().string() + "; do not edit.\n";
        text += "id = " + polyplug::detail::toml_string(format_id(bundle_id(name))) +
                "  # bundle_id(\"" + comment_text(name) + "\")\n";
        text += "name = " + polyplug::detail::toml_string(name) + "\n";
        if (!version.empty()) text += "version = " + polyplug::detail::toml_string(version) + "\n";
        text += "loader = " + polyplug::detail::toml_string(loader) + "\n";
        text += file_line;
        if (vm_bundle && !api.empty()) {
            text += "api = " + polyplug::detail::toml_string(api) + "\n";
        }
        text += "provides = " + polyplug::detail::toml_string_array(provides) + "\n";
        text += "function_count = {" + counts + (counts.empty() ? "}" : " }") + "\n";
        text += std::string("needs_reinit_on_dep_reload = ") + (reinit ? "true" : "false") + "\n";
        text +=
            "bundle_dependencies = " + polyplug::detail::toml_string_array(bundle_dependencies) +
            "\n";
        text += file_table;
        if (computed == nullptr) return text + dependencies;
        for (const manifest_dependency& dep : computed->dependencies) {
            text += "\n[[dependency]]\n";
            text += std::string("kind = ") +
                    (dep.kind == dependency_kind::bundle ? "\"bundle\"" : "\"contract\"") + "\n";
            text += "contract = " +
                    polyplug::detail::toml_string(polyplug::detail::dependency_contract_text(dep)) +
                    "\n";
            if (!dep.min_version.empty()) {
                text += "min_version = " + polyplug::detail::toml_string(dep.min_version) + "\n";
            }
            text +=
                "contract_id = " + polyplug::detail::toml_string(format_id(dep.contract_id)) + "\n";
            if (!dep.bundle.empty()) {
                text += "bundle = " + polyplug::detail::toml_string(dep.bundle) + "\n";
                text +=
                    "bundle_id = " + polyplug::detail::toml_string(format_id(dep.bundle_id)) + "\n";
            }
        }
        return text;
    };

    // First pass: the runtime's parser checks every rule and computes the dependency ids.
    manifest first;
    if (status s = parse_manifest(header(nullptr), source, first); !s) {
        // The parser names its source ("manifest '<file>': ", or "bundle '<name>': " once the
        // name is read); the file the user wrote is bundle.toml, named like its other errors.
        std::string problem = s.message();
        for (const std::string& prefix :
             {"manifest '" + source + "': ", "bundle '" + name + "': "}) {
            if (problem.starts_with(prefix)) problem.erase(0, prefix.size());
        }
        return {s.code(), source + ": " + problem};
    }
    generated_manifest result;
    result.text = header(&first);
    if (status s = parse_manifest(result.text, "the generated manifest", result.parsed); !s) {
        return s;
    }
    out = std::move(result);
    return {};
}

}  // namespace polyplug::tools
