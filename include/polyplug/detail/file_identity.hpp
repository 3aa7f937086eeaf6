// SPDX-License-Identifier: MIT
/// @file detail/file_identity.hpp
/// A file's identity as one stat sees it, so that work done for a file's bytes (the ELF check)
/// is done once per identity.
#pragma once

#include <polyplug/config.hpp>

#include <compare>
#include <cstdint>

#include <sys/stat.h>
#include <sys/types.h>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// What identifies a file's bytes without reading them: any write changes its size, mtime or
/// ctime (ctime cannot be set back by anyone), a replacement changes the inode. resolve_artifact
/// records it from the lstat it makes anyway, so that the native loader's ELF check (which runs
/// once per identity) needs no stat of its own.
struct file_identity {
    bool known = false;  ///< false: nothing recorded (symlink on the way, private copy, ...)
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    std::int64_t mtime_sec = 0, mtime_nsec = 0, ctime_sec = 0, ctime_nsec = 0;

    [[nodiscard]] static file_identity of(const struct stat& info) noexcept {
        return {true,
                info.st_dev,
                info.st_ino,
                info.st_size,
                info.st_mtim.tv_sec,
                info.st_mtim.tv_nsec,
                info.st_ctim.tv_sec,
                info.st_ctim.tv_nsec};
    }
    auto operator<=>(const file_identity&) const = default;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
