# SPDX-License-Identifier: MIT
# A helper module whose name the other iso bundle uses too.
NAME = "helper b"
