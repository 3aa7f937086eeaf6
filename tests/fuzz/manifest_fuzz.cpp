// SPDX-License-Identifier: MIT
/// @file fuzz/manifest_fuzz.cpp
/// libFuzzer target: manifest.toml text through parse_manifest. Any input must give either a
/// manifest or a status with a message, never a crash, a hang or a leak; a success must satisfy
/// the rules the parser promises (so a parser that accepts nonsense is caught too).
#include <polyplug/manifest.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    polyplug::manifest m;
    const polyplug::status st = polyplug::parse_manifest(text, "fuzz/manifest.toml", m);
    if (!st) {
        if (st.message().empty()) std::abort();  // every refusal explains itself
        return 0;
    }
    // Accepted: the id is the name's, and the name is never empty.
    if (m.name.empty() || m.id != polyplug::bundle_id(m.name)) std::abort();
    return 0;
}
