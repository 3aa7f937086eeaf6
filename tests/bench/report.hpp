// SPDX-License-Identifier: MIT
/// @file bench/report.hpp
/// Rows of results and their three renderings: a table for people (stdout), JSON for tools and a
/// Markdown table for docs/PERFORMANCE.md. A row is a measured path beside its baseline, or a
/// path whose feature is not built yet.
#pragma once

#include "harness.hpp"
#include "machine.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace bench {

/// A budget from DESIGN.md. Timing never fails anything: a missed budget is reported, not
/// enforced (instruction counts are the enforced check; see callgrind_check.py).
struct budget {
    std::string text;          ///< as DESIGN.md states it
    double max_ratio = 0;      ///< measured / baseline must not exceed this (0: no ratio limit)
    double max_median_ns = 0;  ///< the measured median must not exceed this (0: no limit)

    [[nodiscard]] bool empty() const noexcept { return text.empty(); }
};

struct row {
    std::string group;
    std::string name;
    std::string baseline_name;
    summary measured;
    summary baseline;
    summary paired_ratio;   ///< measured / baseline per repetition (see comparison::ratio)
    std::string not_built;  ///< "issue N" when the feature this row needs is not built yet
    budget limit;
    std::string note;

    [[nodiscard]] bool measured_now() const noexcept { return not_built.empty(); }

    /// The median of the paired ratios.
    [[nodiscard]] double ratio() const noexcept { return paired_ratio.median; }

    void take(const comparison& c) {
        baseline = c.baseline;
        measured = c.measured;
        paired_ratio = c.ratio;
    }

    /// "ok", "over budget", or empty when no budget applies.
    [[nodiscard]] std::string verdict() const {
        if (limit.empty() || !measured_now()) return {};
        const bool ratio_ok = limit.max_ratio == 0 || ratio() <= limit.max_ratio;
        const bool median_ok = limit.max_median_ns == 0 || measured.median <= limit.max_median_ns;
        return ratio_ok && median_ok ? "ok" : "over budget";
    }
};

/// "1.23 ns", "45.6 µs", "7.89 ms".
[[nodiscard]] inline std::string format_time(double ns) {
    char text[32];
    if (ns < 1e3)
        std::snprintf(text, sizeof text, "%.2f ns", ns);
    else if (ns < 1e6)
        std::snprintf(text, sizeof text, "%.2f µs", ns / 1e3);
    else
        std::snprintf(text, sizeof text, "%.2f ms", ns / 1e6);
    return text;
}

[[nodiscard]] inline std::string format_ratio(double ratio) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2fx", ratio);
    return text;
}

/// "1.02x [0.98 .. 1.05]": the paired ratio's median, p10 and p90.
[[nodiscard]] inline std::string format_ratio(const summary& ratio) {
    char text[64];
    std::snprintf(text, sizeof text, "%.2fx [%.2f .. %.2f]", ratio.median, ratio.p10, ratio.p90);
    return text;
}

[[nodiscard]] inline std::string spread(const summary& s) {
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false positive) about
    // "literal" + std::string&&.
    std::string out = "[";
    out += format_time(s.p10);
    out += " .. ";
    out += format_time(s.p90);
    out += "]";
    return out;
}

class report {
public:
    void add(row r) {
        print_row(r);
        rows_.push_back(std::move(r));
    }

    [[nodiscard]] const std::vector<row>& rows() const noexcept { return rows_; }

    static void print_machine(const machine& m) {
        std::printf("machine: %s, %u logical CPUs, %s MHz at start, governor %s%s\n",
                    m.cpu_model.c_str(), m.logical_cpus, m.cpu_mhz.c_str(), m.governor.c_str(),
                    m.virtualised ? ", virtualised (hypervisor flag)" : "");
        std::printf("kernel: %s; compiler: %s%s\n", m.kernel.c_str(), m.compiler.c_str(),
                    m.optimised ? ", optimised" : ", NOT optimised: numbers are meaningless");
        std::printf(
            "each row: median time per operation [p10 .. p90 over repetitions]; ratio: "
            "median [p10 .. p90] of measured / baseline per repetition (pairs run back "
            "to back); above 1 = slower than the baseline\n");
    }

    bool write_json(const std::string& path, const machine& m, const settings& fast,
                    const settings& slow) const {
        std::ofstream out(path);
        if (!out) return false;
        out << "{\n  \"machine\": {\"cpu_model\": " << quote(m.cpu_model)
            << ", \"logical_cpus\": " << m.logical_cpus << ", \"cpu_mhz\": " << quote(m.cpu_mhz)
            << ", \"governor\": " << quote(m.governor)
            << ", \"virtualised\": " << (m.virtualised ? "true" : "false")
            << ", \"kernel\": " << quote(m.kernel) << ", \"compiler\": " << quote(m.compiler)
            << ", \"optimised\": " << (m.optimised ? "true" : "false") << "},\n";
        out << "  \"settings\": {\"fast\": {\"batch_ms\": " << fast.batch_ms
            << ", \"repetitions\": " << fast.repetitions
            << "}, \"slow\": {\"batch_ms\": " << slow.batch_ms
            << ", \"repetitions\": " << slow.repetitions
            << "}, \"retries_when_preempted\": " << fast.retries_when_preempted << "},\n";
        out << "  \"unit\": \"ns per operation\",\n  \"rows\": [\n";
        for (std::size_t i = 0; i < rows_.size(); ++i) {
            const row& r = rows_[i];
            out << "    {\"group\": " << quote(r.group) << ", \"name\": " << quote(r.name);
            if (!r.measured_now()) {
                out << ", \"status\": " << quote("not built yet (" + r.not_built + ")");
            } else {
                out << ", \"status\": \"measured\", \"measured\": " << stats(r.measured)
                    << ", \"baseline\": {\"name\": " << quote(r.baseline_name)
                    << ", \"stats\": " << stats(r.baseline) << "}, \"ratio\": " << r.ratio()
                    << ", \"ratio_p10\": " << r.paired_ratio.p10
                    << ", \"ratio_p90\": " << r.paired_ratio.p90;
                if (!r.limit.empty())
                    out << ", \"budget\": {\"text\": " << quote(r.limit.text)
                        << ", \"max_ratio\": " << r.limit.max_ratio
                        << ", \"max_median_ns\": " << r.limit.max_median_ns
                        << ", \"verdict\": " << quote(r.verdict()) << "}";
            }
            if (!r.note.empty()) out << ", \"note\": " << quote(r.note);
            out << "}" << (i + 1 < rows_.size() ? "," : "") << "\n";
        }
        out << "  ]\n}\n";
        return bool(out);
    }

    bool write_markdown(const std::string& path) const {
        std::ofstream out(path);
        if (!out) return false;
        out << "| path | median | p10 .. p90 | baseline | baseline median | ratio [p10 .. p90] | "
               "budget |\n"
            << "|---|---|---|---|---|---|---|\n";
        std::string group;
        for (const row& r : rows_) {
            if (r.group != group) {
                group = r.group;
                out << "| **" << group << "** | | | | | | |\n";
            }
            if (!r.measured_now()) {
                out << "| " << r.name << " | not built yet (" << r.not_built << ") | | | | | |\n";
                continue;
            }
            out << "| " << r.name << " | " << format_time(r.measured.median) << " | "
                << format_time(r.measured.p10) << " .. " << format_time(r.measured.p90) << " | "
                << r.baseline_name << " | " << format_time(r.baseline.median) << " | "
                << format_ratio(r.paired_ratio) << " | "
                << (r.limit.empty() ? "" : r.limit.text + ": " + r.verdict()) << " |\n";
        }
        return bool(out);
    }

private:
    void print_row(const row& r) {
        if (r.group != printed_group_) {
            printed_group_ = r.group;
            std::printf("\n%s\n", r.group.c_str());
        }
        if (!r.measured_now()) {
            std::printf("  %-50s not built yet (%s)\n", r.name.c_str(), r.not_built.c_str());
            return;
        }
        const std::string budget_text =
            r.limit.empty() ? "" : "  budget " + r.limit.text + ": " + r.verdict();
        std::printf("  %-50s %11s  %-27s %s%s\n", r.name.c_str(),
                    format_time(r.measured.median).c_str(), spread(r.measured).c_str(),
                    format_ratio(r.paired_ratio).c_str(), budget_text.c_str());
        std::printf("    vs %-47s %11s  %-27s\n", r.baseline_name.c_str(),
                    format_time(r.baseline.median).c_str(), spread(r.baseline).c_str());
        if (!r.note.empty()) std::printf("    (%s)\n", r.note.c_str());
        std::fflush(stdout);
    }

    static std::string quote(const std::string& text) {
        std::string out = "\"";
        for (const char c : text) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                out += escaped;
            } else {
                out += c;
            }
        }
        return out + "\"";
    }

    static std::string stats(const summary& s) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "{\"median\": %.4f, \"p10\": %.4f, \"p90\": %.4f, \"min\": %.4f, \"max\": "
                      "%.4f, \"repetitions\": %zu, \"ops_per_repetition\": %llu, \"reruns\": "
                      "%zu, \"disturbed\": %zu}",
                      s.median, s.p10, s.p90, s.min, s.max, s.repetitions,
                      static_cast<unsigned long long>(s.ops_per_repetition), s.reruns, s.disturbed);
        return text;
    }

    std::vector<row> rows_;
    std::string printed_group_;
};

}  // namespace bench
