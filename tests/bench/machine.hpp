// SPDX-License-Identifier: MIT
/// @file bench/machine.hpp
/// What the numbers were measured on: CPU model, logical CPUs, frequency policy, kernel,
/// compiler. Read from /proc and /sys; anything unavailable is reported as unknown, never guessed.
#pragma once

#include <sys/utsname.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace bench {

struct machine {
    std::string cpu_model = "unknown";
    unsigned logical_cpus = 0;
    std::string cpu_mhz = "unknown";   ///< as /proc/cpuinfo reports it at start
    std::string governor = "unknown";  ///< cpufreq scaling governor of cpu0
    bool virtualised = false;          ///< the CPU reports the hypervisor flag
    std::string kernel = "unknown";
    std::string compiler;
    bool optimised = false;  ///< built with optimisation (__OPTIMIZE__)
};

namespace detail {

// The value of the first "key : value" line of /proc/cpuinfo whose key is `key`.
inline std::string cpuinfo_field(const std::string& text, const std::string& key) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        if (name != key) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(value.begin());
        return value;
    }
    return {};
}

inline std::string read_text(const char* path) {
    std::ifstream in(path);
    if (!in) return {};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace detail

[[nodiscard]] inline machine describe_machine() {
    machine m;
    const std::string cpuinfo = detail::read_text("/proc/cpuinfo");
    if (std::string model = detail::cpuinfo_field(cpuinfo, "model name"); !model.empty())
        m.cpu_model = model;
    if (std::string mhz = detail::cpuinfo_field(cpuinfo, "cpu MHz"); !mhz.empty()) m.cpu_mhz = mhz;
    std::string flags = " ";  // appended, not "literal" + string: GCC 12 -Wrestrict false positive
    flags += detail::cpuinfo_field(cpuinfo, "flags");
    flags += ' ';
    m.virtualised = flags.find(" hypervisor ") != std::string::npos;
    m.logical_cpus = std::thread::hardware_concurrency();
    std::string governor =
        detail::read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    while (!governor.empty() && (governor.back() == '\n' || governor.back() == ' '))
        governor.pop_back();
    m.governor = governor.empty() ? "unknown (no cpufreq in /sys: the kernel does not manage the "
                                    "frequency here, typical of virtual machines)"
                                  : governor;
    if (utsname u{}; ::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
#if defined(__clang__)
    m.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
    m.compiler = "gcc " __VERSION__;
#else
    m.compiler = "unknown";
#endif
#if defined(__OPTIMIZE__)
    m.optimised = true;
#endif
    return m;
}

}  // namespace bench
