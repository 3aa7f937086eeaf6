// SPDX-License-Identifier: MIT
/// @file detail/contract_file_cache.hpp
/// read_contract_file for the loaders that stage a version per load and reload: the file is read
/// every time and parsed again only when its bytes differ from the last ones parsed for that
/// path (detail/parse_memo.hpp says why and why per process).
#pragma once

#include <polyplug/contract_file.hpp>
#include <polyplug/detail/parse_memo.hpp>

#include <filesystem>
#include <memory>
#include <string>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Same errors as polyplug::read_contract_file (the first problem), but the result is shared
/// and immutable, and a text parsed before is not parsed again: a script bundle's reload
/// re-parsed its unchanged contract file, about 50 µs of a Lua reload's 175. `out` is untouched
/// on failure.
[[nodiscard]] inline status read_shared_contract_file(const std::filesystem::path& path,
                                                      std::shared_ptr<const contract_file>& out) {
    const std::string& name = path.native();
    const api_toml::reporter report(name);
    return api_toml::guard_exceptions(report, [&]() -> status {
        std::string text;
        if (status s = api_toml::read_contract_text(path, report, text); !s) return s;
        parse_memo<contract_file>& memo = parse_memo<contract_file>::shared();
        if (std::shared_ptr<const contract_file> known = memo.find(name, text)) {
            out = std::move(known);
            return {};
        }
        auto parsed = std::make_shared<contract_file>();
        if (status s = parse_contract_file(text, name, *parsed); !s) return s;
        out = parsed;
        memo.keep(name, std::move(text), std::move(parsed), max_contract_file_bytes);
        return {};
    });
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
