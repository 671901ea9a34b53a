#!/usr/bin/env python3
"""Runs a command under a Docker-format seccomp profile, without Docker.

    deploy/docker/seccomp-run.py PROFILE.json [--without NAME[,NAME...]] -- COMMAND [ARGS...]

Loads the profile's rules into a seccomp filter through libseccomp (libseccomp.so.2, via
ctypes; no Python package needed) and execs COMMAND under it, the way runc applies a profile
just before it execs a container's process (no_new_privs set, names unknown on this architecture
skipped). `--without` drops syscalls from the allow rules, e.g. to show what happens without
io_uring. Used by Tests/DeploymentTests to start hbbs/hbbr under seccomp-io_uring.json.

Only what the shipped profile uses is supported: defaultAction/defaultErrnoRet, and rules with
SCMP_ACT_ALLOW or SCMP_ACT_ERRNO (+ errnoRet) and optional args. includes/excludes (Docker's
capability- and kernel-conditional rules) are not evaluated: such a rule is rejected.
Exit status 125 when the filter cannot be set up (like `docker run`); otherwise COMMAND's own.
"""
import ctypes
import json
import os
import sys

ACT_ALLOW = 0x7FFF0000
def act_errno(n): return 0x00050000 | (n & 0xFFFF)

OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]

def fail(message):
    print(f"seccomp-run: {message}", file=sys.stderr)
    sys.exit(125)

def main(argv):
    if "--" not in argv or argv.index("--") < 1 or argv.index("--") == len(argv) - 1:
        fail("usage: seccomp-run.py PROFILE.json [--without NAME,...] -- COMMAND [ARGS...]")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    profile_path, without = options[0], set()
    rest = options[1:]
    while rest:
        if rest[0] == "--without" and len(rest) > 1:
            without |= set(filter(None, rest[1].split(",")))
            rest = rest[2:]
        else:
            fail(f"unknown option {rest[0]}")

    with open(profile_path) as f:
        profile = json.load(f)
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as error:
        fail(f"libseccomp.so.2 is not available: {error}")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]

    default = profile.get("defaultAction")
    if default != "SCMP_ACT_ERRNO":
        fail(f"unsupported defaultAction {default}")
    ctx = lib.seccomp_init(act_errno(profile.get("defaultErrnoRet", 1)))
    if not ctx:
        fail("seccomp_init failed")

    for rule in profile.get("syscalls", []):
        if rule.get("includes") or rule.get("excludes"):
            fail("conditional rules (includes/excludes) are not supported")
        action = rule["action"]
        if action == "SCMP_ACT_ALLOW":
            code = ACT_ALLOW
        elif action == "SCMP_ACT_ERRNO":
            code = act_errno(rule.get("errnoRet", profile.get("defaultErrnoRet", 1)))
        else:
            fail(f"unsupported action {action}")
        args = rule.get("args") or []
        array = (ArgCmp * max(len(args), 1))()
        for i, a in enumerate(args):
            array[i] = ArgCmp(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
        for name in rule["names"]:
            if action == "SCMP_ACT_ALLOW" and name in without:
                continue
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a syscall on this architecture (runc skips these too)
            status = lib.seccomp_rule_add_array(ctx, code, number, len(args), array)
            if status != 0:
                fail(f"cannot add a rule for {name}: {os.strerror(-status)}")

    status = lib.seccomp_load(ctx)  # sets no_new_privs first (libseccomp's default)
    if status != 0:
        fail(f"seccomp_load failed: {os.strerror(-status)}")
    try:
        os.execvp(command[0], command)
    except OSError as error:
        fail(f"cannot run {command[0]}: {error}")

if __name__ == "__main__":
    main(sys.argv[1:])
