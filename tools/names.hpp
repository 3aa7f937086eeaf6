// SPDX-License-Identifier: MIT
/// @file names.hpp
/// How the generators spell contract-file names in C and C++: "example.calc" becomes the prefix
/// EXAMPLE_CALC / example_calc / ExampleCalc, "sum_points" becomes SUM_POINTS / SumPoints. One
/// place, so the C header and the docs agree.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace polyplug::tools {

/// The words of a name: split at '.', '_' and lower-to-upper case changes, so "pipeline.Decoder",
/// "pipeline_decoder" and "pipelineDecoder" all give {"pipeline", "decoder"} (lower case).
/// A run of capitals stays one word ("HTTPServer" gives {"http", "server"}).
[[nodiscard]] inline std::vector<std::string> name_words(std::string_view name) {
    std::vector<std::string> words;
    std::string word;
    auto flush = [&] {
        if (!word.empty()) words.push_back(std::move(word));
        word.clear();
    };
    auto is_upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
    auto is_lower = [](char c) { return std::islower(static_cast<unsigned char>(c)) != 0; };
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (c == '.' || c == '_') {
            flush();
            continue;
        }
        if (is_upper(c) && !word.empty()) {
            const char previous = name[i - 1];
            const bool next_lower = i + 1 < name.size() && is_lower(name[i + 1]);
            if (!is_upper(previous) || next_lower) flush();
        }
        word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    flush();
    return words;
}

/// EXAMPLE_CALC: macros and enumerators.
[[nodiscard]] inline std::string upper_snake(std::string_view name) {
    std::string out;
    for (const std::string& w : name_words(name)) {
        if (!out.empty()) out += '_';
        for (char c : w) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

/// example_calc: functions.
[[nodiscard]] inline std::string lower_snake(std::string_view name) {
    std::string out;
    for (const std::string& w : name_words(name)) {
        if (!out.empty()) out += '_';
        out += w;
    }
    return out;
}

/// ExampleCalc: types.
[[nodiscard]] inline std::string pascal_case(std::string_view name) {
    std::string out;
    for (std::string w : name_words(name)) {
        w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        out += w;
    }
    return out;
}

/// The last dot-separated part of a contract name ("pipeline.Decoder" gives "Decoder").
[[nodiscard]] inline std::string_view last_segment(std::string_view dotted) {
    const std::size_t dot = dotted.rfind('.');
    return dot == std::string_view::npos ? dotted : dotted.substr(dot + 1);
}

/// A C/C++ identifier made from a dotted name: dots become underscores ("host.app.Log" gives
/// "host_app_Log").
[[nodiscard]] inline std::string underscored(std::string_view dotted) {
    std::string out(dotted);
    for (char& c : out) {
        if (c == '.') c = '_';
    }
    return out;
}

}  // namespace polyplug::tools
