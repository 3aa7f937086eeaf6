// SPDX-License-Identifier: MIT
/// @file detail/private_copies.hpp
/// Private copies of native libraries, so that a new version of a bundle runs its new code.
#pragma once

#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why copies exist at all: glibc's dlopen hands back the library it already has when the path
/// (or the file's device and inode) matches one that is loaded, so opening a rebuilt library at
/// the same path while its previous version is still mapped (a reload; an unload still in its
/// grace period) would run the old code again. A copy has a path and an inode of its own.
///
/// What a copy costs: one file created in a directory of the runtime's own, the library's bytes
/// moved by the kernel (sendfile: no pass through user memory), no fsync (the copy only has to
/// outlive this process's use of it, not a crash), and the unlink once the loader let go of it.
/// It is made only when needed: the caller asks `is_needed` (the library is mapped now) first.
class private_copies {
public:
    explicit private_copies(const void* owner) : owner_(owner) {}
    private_copies(const private_copies&) = delete;
    private_copies& operator=(const private_copies&) = delete;

    /// Removes the directory and any copy left in it.
    ~private_copies() {
        if (dir_.empty()) return;
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    /// Copies `original` to a file of its own for version `load_id`; `copy` receives its path.
    /// Errors: errc::library_load_failed naming the file and the system's reason.
    [[nodiscard]] status make(const std::filesystem::path& original, std::uint64_t load_id,
                              std::filesystem::path& copy) {
        std::lock_guard lock(mutex_);
        if (status st = ensure_dir(); !st) return st;
        copy = dir_ / (std::to_string(load_id) + "-" + original.filename().string());
        const int in = ::open(original.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) return failure("cannot open '" + original.string() + "' to copy it", errno);
        struct stat info {};
        if (::fstat(in, &info) != 0) {
            const int error = errno;
            ::close(in);
            return failure("cannot inspect '" + original.string() + "'", error);
        }
        const int out = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        if (out < 0) {
            const int error = errno;
            ::close(in);
            return failure("cannot create '" + copy.string() + "'", error);
        }
        int error = 0;
        for (off_t done = 0; done < info.st_size && error == 0;) {
            const ssize_t moved =
                ::sendfile(out, in, &done, static_cast<std::size_t>(info.st_size - done));
            if (moved < 0 && errno != EINTR) error = errno;
            if (moved == 0) break;  // the file shrank while copied: the ELF check will say so
        }
        ::close(in);
        if (::close(out) != 0 && error == 0) error = errno;
        if (error != 0) {
            ::unlink(copy.c_str());
            return failure("cannot copy '" + original.string() + "' to '" + copy.string() + "'",
                           error);
        }
        return {};
    }

    /// Deletes one copy (the mapping, if any, lives on without the file).
    static void remove(const std::filesystem::path& copy) noexcept {
        if (!copy.empty()) ::unlink(copy.c_str());
    }

private:
    [[nodiscard]] status ensure_dir() {
        if (!dir_.empty()) return {};
        std::error_code ec;
        const std::filesystem::path dir = std::filesystem::temp_directory_path(ec) /
                                          ("polyplug-" + std::to_string(::getpid()) + "-" +
                                           format_id(reinterpret_cast<std::uintptr_t>(owner_)));
        std::filesystem::create_directories(dir, ec);
        if (ec)
            return {errc::library_load_failed, "cannot create the directory for private copies '" +
                                                   dir.string() + "': " + ec.message()};
        dir_ = dir;
        return {};
    }

    static status failure(const std::string& what, int error) {
        return {errc::library_load_failed, what + ": " + std::strerror(error)};
    }

    const void* owner_;
    std::mutex mutex_;
    std::filesystem::path dir_;  // created at the first copy
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
