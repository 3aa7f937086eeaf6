// SPDX-License-Identifier: MIT
/// @file child_process.hpp
/// Runs one hidden test case of the running executable in a child process, for behaviour that is
/// only visible from outside a process: how it ends (a crash at exit, an abort inside dlopen).
#pragma once

#include "catch.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

extern char** environ;

namespace test_support {

struct child_result {
    bool exited = false;  ///< ended by exit(), not by a signal
    int code = -1;        ///< its exit code, or the signal that ended it
    std::string output;   ///< stdout and stderr
};

/// Runs one hidden case of this executable in a child process and waits for it to end.
inline child_result run_child(const std::string& test_name) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::string name = test_name;
    char* argv[] = {self.data(), name.data(), nullptr};
    pid_t pid = 0;
    const int spawned = ::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    REQUIRE(spawned == 0);
    child_result result;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        result.output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    result.exited = WIFEXITED(status);
    result.code = result.exited ? WEXITSTATUS(status) : WTERMSIG(status);
    return result;
}

/// The child ran its case, every assertion passed, and it exited normally.
inline void require_clean_child(const std::string& test_name) {
    const child_result child = run_child(test_name);
    INFO("child output:\n" << child.output);
    CHECK(child.exited);
    CHECK(child.code == 0);
    CHECK(child.output.find("All tests passed") != std::string::npos);
}

}  // namespace test_support
