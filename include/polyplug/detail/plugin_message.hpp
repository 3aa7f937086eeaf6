// SPDX-License-Identifier: MIT
/// @file detail/plugin_message.hpp
/// Copying an error message a plugin hands back (its pointer and length are its word, not a fact)
/// without faulting, without reading past a fixed cap, and as valid UTF-8.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/utf8.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Copies up to `n` bytes at `from` into `to` without faulting on memory that is not readable.
/// Returns the bytes copied (fewer than `n` when the range runs into an unreadable page), or -1
/// when not even the first byte is readable. process_vm_readv on our own process makes the
/// kernel do the read, so a bad address gives EFAULT instead of SIGSEGV (and sanitizers see
/// no access of ours to the plugin's memory). Where a seccomp policy refuses that system call,
/// a pipe does the same job: write(2) from a bad address fails with EFAULT too.
inline long read_without_faulting(void* to, const void* from, std::size_t n) noexcept {
    iovec local{to, n};
    iovec remote{const_cast<void*>(from), n};
    const ssize_t got = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0);
    if (got >= 0) return got > 0 ? static_cast<long>(got) : -1;
    if (errno == EFAULT) return -1;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    // A pipe holds at least 4096 bytes without a reader; larger caps are read a page at a time.
    long total = 0;
    while (static_cast<std::size_t>(total) < n) {
        const std::size_t chunk =
            n - static_cast<std::size_t>(total) < 4096 ? n - static_cast<std::size_t>(total) : 4096;
        const ssize_t wrote = ::write(fds[1], static_cast<const char*>(from) + total, chunk);
        if (wrote <= 0) break;
        const ssize_t read_back =
            ::read(fds[0], static_cast<char*>(to) + total, static_cast<std::size_t>(wrote));
        if (read_back != wrote) break;
        total += wrote;
    }
    ::close(fds[0]);
    ::close(fds[1]);
    return total > 0 ? total : -1;
}

/// The text of an error message a plugin returned (`AbiError.message`), copied defensively:
/// - only bytes that are readable are read (never a fault, whatever the pointer), and at most
///   `max` of them, whatever the length claims;
/// - a length over `max` is noted in the text ("… (message cut at 4096 of N bytes)"), and the
///   copy then ends at its first NUL byte: a length that large is not to be believed, and a C
///   plugin's text ends at its terminator;
/// - an unreadable pointer gives "(the plugin's error message pointer is not readable)";
/// - invalid UTF-8 is replaced with U+FFFD, and a cut never splits a character.
/// A null pointer or a length of 0 gives "". Never throws anything but std::bad_alloc.
[[nodiscard]] inline std::string copy_plugin_message(const std::uint8_t* ptr, std::size_t len,
                                                     std::size_t max = 4096) {
    if (ptr == nullptr || len == 0) return {};
    const std::size_t wanted = len < max ? len : max;
    std::string raw(wanted, '\0');
    const long got = read_without_faulting(raw.data(), ptr, wanted);
    if (got < 0) return "(the plugin's error message pointer is not readable)";
    raw.resize(static_cast<std::size_t>(got));
    const bool over_cap = len > max;
    if (over_cap) {
        const std::size_t nul = raw.find('\0');
        if (nul != std::string::npos) raw.resize(nul);
    }
    const bool cut = raw.size() < len;
    if (cut) {
        // Drop a character that the cut split (up to 3 bytes of an incomplete sequence).
        const auto* s = reinterpret_cast<const unsigned char*>(raw.data());
        std::size_t start = raw.size();
        for (std::size_t back = 1; back <= 3 && back <= raw.size(); ++back) {
            if ((s[raw.size() - back] & 0xC0) != 0x80) {
                start = raw.size() - back;
                break;
            }
        }
        if (start < raw.size() && utf8_sequence_length(s, raw.size(), start) == 0) {
            const unsigned char lead = s[start];
            const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (need > raw.size() - start) raw.resize(start);
        }
    }
    std::string text = utf8_lossy(raw.data(), raw.size(), raw.size() * 3 + 3);
    if (over_cap) {
        text +=
            " (message cut at " + std::to_string(max) + " of " + std::to_string(len) + " bytes)";
    } else if (cut) {
        text += " (message cut at " + std::to_string(raw.size()) + " of " + std::to_string(len) +
                " bytes: the rest is not readable)";
    }
    return text;
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
