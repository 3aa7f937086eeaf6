// SPDX-License-Identifier: MIT
/// @file detail/toml_prescan.hpp
/// One linear pass over TOML text before toml++ reads it: bounds how deeply keys, table headers
/// and brackets nest, and reports each `key = value` line (the manifest's ids need that).
#pragma once

#include <polyplug/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// How deeply a manifest or contract file may nest: every segment of a dotted key or of a table
/// header, and every `[` and `{` of a value, counts one level (a real manifest needs 3, a contract
/// file 6). toml++ bounds only the brackets (at 256); the tables that dotted keys and headers
/// create are walked recursively by its parser (`update_region_ends`) and freed recursively by
/// their destructors, so `a.a.a...= 1` or `[a.a.a...]` 100,000 deep overflows the stack. The tree
/// toml++ builds is at most twice this deep (a header segment may be an array of tables).
inline constexpr std::size_t max_toml_nesting = 64;

/// A line and a column (in code points, as toml++ counts them), both from 1.
struct toml_text_position {
    std::uint32_t line = 1;
    std::uint32_t column = 1;
};

/// Where the text first goes deeper than the limit: the dot or bracket that opens the level.
struct toml_nesting_excess {
    toml_text_position where;
    std::size_t limit = max_toml_nesting;

    [[nodiscard]] std::string problem() const {
        return "keys, tables and arrays nested deeper than " + std::to_string(limit) +
               " levels (each segment of a dotted key or table header and each '[' or '{' counts "
               "one)";
    }
};

/// A `key = value` outside any bracket, as the pre-scan saw it.
struct toml_line_assignment {
    bool in_root = true;           ///< before any table header
    bool table_is_array = false;   ///< the last header was `[[...]]`
    std::string_view table;        ///< the last header's key when it is one bare key, else ""
    std::string_view key;          ///< the key when it is one bare key, else ""
    std::size_t value_offset = 0;  ///< the byte after the '='
    std::uint32_t line = 1;  ///< the line of the '=' (and of the value: TOML keeps them on one)
};

/// The pre-scan. It follows TOML's lexical rules (strings, escapes, comments, headers, brackets)
/// but checks nothing else: wherever the text is not TOML, toml++ stops with a syntax error before
/// it builds anything past that point, so counting there only has to go on, not be right.
class toml_prescanner {
public:
    toml_prescanner(std::string_view text, std::size_t limit) : text_(text), limit_(limit) {}

    /// Calls `on_assignment(const toml_line_assignment&)` for each line-level `key = value` in
    /// order; stops at the first level beyond the limit.
    template <class OnAssignment>
    [[nodiscard]] std::optional<toml_nesting_excess> run(OnAssignment&& on_assignment) {
        enum class mode { line, key, value };
        mode m = mode::line;
        std::size_t value_depth = 0;
        while (at_ < text_.size()) {
            const char c = text_[at_];
            if (m == mode::line) {
                if (c == '#') {
                    skip_comment();
                } else if (c == '[') {
                    if (!header()) return excess();
                } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                    start_key(table_depth_);
                    m = mode::key;
                    continue;
                } else {
                    step();
                }
            } else if (m == mode::key) {
                if (c == '=') {
                    if (key_segments_ == 0 && !level(key_base_ + 1)) return excess();
                    value_depth = key_base_ + std::max<std::size_t>(key_segments_, 1);
                    if (frames_.empty()) on_assignment(assignment());
                    step();
                    m = mode::value;
                } else if (c == '}' && !frames_.empty()) {
                    value_depth = close();
                    m = mode::value;
                } else if (c == '\n' && frames_.empty()) {
                    step();  // a key without '=': not TOML; start over on the next line
                    m = mode::line;
                } else if (!key_char()) {
                    return excess();
                }
            } else {
                switch (c) {
                    case '\n':
                        step();
                        if (frames_.empty()) m = mode::line;
                        break;
                    case '#':
                        skip_comment();
                        break;
                    case '"':
                    case '\'':
                        skip_string();
                        break;
                    case '[':
                    case '{':
                        if (!level(value_depth + 1)) return excess();
                        frames_.push_back({c, ++value_depth});
                        step();
                        if (c == '{') {
                            start_key(value_depth);
                            m = mode::key;
                        }
                        break;
                    case ']':
                    case '}':
                        if (!frames_.empty()) {
                            value_depth = close();
                        } else {
                            step();
                        }
                        break;
                    case ',':
                        step();
                        if (!frames_.empty() && frames_.back().kind == '{') {
                            start_key(frames_.back().depth);
                            m = mode::key;
                        } else if (!frames_.empty()) {
                            value_depth = frames_.back().depth;
                        }
                        break;
                    default:
                        step();
                }
            }
        }
        return std::nullopt;
    }

private:
    struct frame {
        char kind;          // '[' or '{'
        std::size_t depth;  // the level of what it holds
    };

    void step() noexcept {
        if (text_[at_] == '\n') {
            ++line_;
            line_begin_ = at_ + 1;
        }
        ++at_;
    }

    void skip_comment() noexcept {
        while (at_ < text_.size() && text_[at_] != '\n') ++at_;
    }

    [[nodiscard]] std::size_t run_of(char quote) const noexcept {
        std::size_t n = 0;
        while (at_ + n < text_.size() && text_[at_ + n] == quote) ++n;
        return n;
    }

    /// Past one string, from its opening quote: basic ("..."), literal ('...'), and their
    /// multi-line forms, which end at three quotes (up to two more belong to the content).
    void skip_string() noexcept {
        const char quote = text_[at_];
        const bool escapes = quote == '"';
        if (run_of(quote) >= 3) {
            for (int i = 0; i < 3; ++i) step();
            while (at_ < text_.size()) {
                if (escapes && text_[at_] == '\\') {
                    step();
                    if (at_ < text_.size()) step();
                } else if (const std::size_t quotes = run_of(quote); quotes >= 3) {
                    for (std::size_t i = 0; i < std::min<std::size_t>(quotes, 5); ++i) step();
                    return;
                } else if (quotes > 0) {
                    for (std::size_t i = 0; i < quotes; ++i) step();
                } else {
                    step();
                }
            }
            return;
        }
        step();
        while (at_ < text_.size() && text_[at_] != '\n') {
            const char c = text_[at_];
            step();
            if (c == quote) return;
            if (escapes && c == '\\' && at_ < text_.size() && text_[at_] != '\n') step();
        }
        // An unterminated string: toml++ refuses this line, so the scan only has to go on.
    }

    /// One level deeper than the limit allows records where, and answers false.
    [[nodiscard]] bool level(std::size_t depth) noexcept {
        if (depth <= limit_) return true;
        failed_at_ = at_;
        return false;
    }

    /// The position of byte `offset` on the current line (only the byte that failed is asked).
    [[nodiscard]] toml_text_position position_of(std::size_t offset) const noexcept {
        std::uint32_t column = 1;
        for (std::size_t i = line_begin_; i < offset && i < text_.size(); ++i) {
            if ((static_cast<unsigned char>(text_[i]) & 0xC0u) != 0x80u) ++column;
        }
        return {line_, column};
    }

    [[nodiscard]] toml_nesting_excess excess() const noexcept {
        return {position_of(failed_at_), limit_};
    }

    void start_key(std::size_t base) noexcept {
        key_base_ = base;
        key_segments_ = 0;
        key_simple_ = true;
        key_begin_ = key_end_ = at_;
    }

    /// One character of a key: a quoted segment, a dot, or a bare character. False when a
    /// segment goes beyond the limit.
    [[nodiscard]] bool key_char() {
        const char c = text_[at_];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            step();
            return true;
        }
        if (c == '#') {
            skip_comment();
            return true;
        }
        if (key_segments_ == 0) {
            key_segments_ = 1;
            key_begin_ = at_;
            if (!level(key_base_ + 1)) return false;
        }
        if (c == '.') {
            key_simple_ = false;
            if (!level(key_base_ + ++key_segments_)) return false;
            step();
        } else if (c == '"' || c == '\'') {
            key_simple_ = false;
            skip_string();
        } else {
            step();
        }
        key_end_ = at_;
        return true;
    }

    [[nodiscard]] toml_line_assignment assignment() const noexcept {
        toml_line_assignment a;
        a.in_root = in_root_;
        a.table_is_array = table_is_array_;
        a.table = table_name_;
        if (key_simple_ && key_segments_ == 1)
            a.key = text_.substr(key_begin_, key_end_ - key_begin_);
        a.value_offset = at_ + 1;
        a.line = line_;
        return a;
    }

    /// Past `]` or `}`: the frame closes; answers the depth to carry on from (its own, which is
    /// never less than its parent's value depth).
    std::size_t close() {
        const std::size_t depth = frames_.back().depth;
        frames_.pop_back();
        step();
        return depth;
    }

    /// A `[table]` or `[[array.of.tables]]` header, from its first bracket to its last.
    [[nodiscard]] bool header() {
        step();
        table_is_array_ = at_ < text_.size() && text_[at_] == '[';
        if (table_is_array_) step();
        in_root_ = false;
        std::size_t segments = 0;
        bool simple = true;
        std::size_t begin = at_, end = at_;
        while (at_ < text_.size() && text_[at_] != '\n' && text_[at_] != ']') {
            const char c = text_[at_];
            if (c == ' ' || c == '\t') {
                step();
                continue;
            }
            if (segments == 0) {
                segments = 1;
                begin = at_;
                if (!level(1)) return false;
            }
            if (c == '.') {
                simple = false;
                if (!level(++segments)) return false;
                step();
            } else if (c == '"' || c == '\'') {
                simple = false;
                skip_string();
            } else {
                step();
            }
            end = at_;
        }
        while (at_ < text_.size() && text_[at_] == ']') step();
        table_depth_ = segments;
        table_name_ =
            simple && segments == 1 ? text_.substr(begin, end - begin) : std::string_view{};
        return true;
    }

    std::string_view text_;
    std::size_t limit_;
    std::size_t at_ = 0;
    std::uint32_t line_ = 1;
    std::size_t line_begin_ = 0;
    std::size_t failed_at_ = 0;
    std::vector<frame> frames_;
    // The current table header.
    bool in_root_ = true;
    bool table_is_array_ = false;
    std::string_view table_name_;
    std::size_t table_depth_ = 0;
    // The key being read.
    std::size_t key_base_ = 0;
    std::size_t key_segments_ = 0;
    bool key_simple_ = true;
    std::size_t key_begin_ = 0;
    std::size_t key_end_ = 0;
};

/// The first place `text` nests deeper than `limit` levels, or nothing. Linear in the text, and
/// not recursive.
[[nodiscard]] inline std::optional<toml_nesting_excess> find_toml_nesting_excess(
    std::string_view text, std::size_t limit = max_toml_nesting) {
    return toml_prescanner(text, limit).run([](const toml_line_assignment&) {});
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
