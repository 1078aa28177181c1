"""Containment a loader child puts itself under before any submission code runs (Linux).

Imported by the child scripts as a sibling (standard library only: the child never imports
gasbuild). ``contain(spec)`` is called first thing, while the interpreter is still single
threaded; each layer is tried on its own and reported as ``{"layer": "active" | "unavailable:
why"}`` so the trusted side can print what held and warn about what did not, never silently:

- ``pdeathsig``: ``PR_SET_PDEATHSIG(SIGKILL)``, so a killed gasbuild takes the child with it
  (checked against the parent's pid afterwards: the parent may already be gone);
- ``rlimits``: address space, CPU seconds, largest file written, no core dumps;
- ``no_new_privs``: no setuid escalation (also what Landlock and seccomp require);
- ``namespaces``: a new user namespace (the child holds no capability over the host: it cannot
  read gasbuild's ``/proc/<pid>/environ`` even as root), a new network namespace (only a
  loopback that is down: no network at all) and a new PID namespace (``pid_namespace``: the
  forked stand-in is its init; when it dies the kernel kills every process left inside,
  including those that left the process group with ``setsid``);
- ``seccomp``: ``socket()`` for inet, packet and netlink families fails with EACCES (the network
  layer where namespaces are unavailable, and a second one where they are);
- ``landlock_fs``: reads only beneath the listed read paths, writes only beneath the write
  paths; ``landlock_net``: no TCP bind or connect (ABI 4+); ``landlock_scope``: no signals to,
  and no abstract unix sockets of, processes outside the sandbox (ABI 6+). Landlock also denies
  ptrace-class access (``/proc/<ppid>/environ``, ``/proc/<ppid>/mem``) to processes outside.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import struct
import sys
from typing import Any

ACTIVE = "active"
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWPID = 0x20000000
# (landlock_create_ruleset, add_rule, restrict_self) are 444..446 on every architecture.
_SYS_LANDLOCK = (444, 445, 446)
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_ALL_V1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ_RIGHTS = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
# seccomp: (audit arch, socket syscall number) per machine; families refused.
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
_X32_BIT = 0x40000000
_REFUSED_FAMILIES = (2, 10, 16, 17)  # AF_INET, AF_INET6, AF_NETLINK, AF_PACKET
_EACCES = 13
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000
# Files a Python process opens at startup or while importing torch: read only.
SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/os-release",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/self",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
)
DEVICE_WRITE = ("/dev/null",)

Layers = dict[str, str]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _why(prefix: str = "") -> str:
    err = ctypes.get_errno()
    return f"unavailable: {prefix}{os.strerror(err) if err else 'failed'}"


def contain(spec: dict[str, Any]) -> Layers:
    """Apply every layer ``spec`` asks for; what held and what did not, by layer name."""
    layers: Layers = {}
    if not sys.platform.startswith("linux"):
        reason = f"unavailable: {sys.platform} is not Linux"
        layers["rlimits"] = set_limits(spec)
        for name in ("pdeathsig", "namespaces", "seccomp", "landlock_fs", "landlock_net"):
            layers[name] = reason
        return layers
    libc = _libc()
    layers["pdeathsig"] = set_pdeathsig(libc, spec.get("parent_pid"))
    layers["rlimits"] = set_limits(spec)
    layers["no_new_privs"] = ACTIVE if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 else _why()
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # nothing else may read this process's memory
    layers.update(enter_namespaces(libc))
    layers["seccomp"] = deny_sockets(libc)
    layers.update(landlock(libc, spec.get("read", []), spec.get("write", [])))
    return layers


def set_pdeathsig(libc: Any, parent_pid: object) -> str:
    """SIGKILL when the parent dies; exits at once when it already has."""
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return _why()
    if isinstance(parent_pid, int) and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the signal was armed
    return ACTIVE


def set_limits(spec: dict[str, Any]) -> str:
    """Address space, CPU seconds and file size, each capped by the hard limit in force."""
    wanted = {
        resource.RLIMIT_AS: int(spec.get("memory_mb", 0)) << 20,
        resource.RLIMIT_CPU: int(spec.get("cpu_seconds", 0)),
        resource.RLIMIT_FSIZE: int(spec.get("file_mb", 0)) << 20,
        resource.RLIMIT_CORE: 0,
    }
    try:
        for kind, limit in wanted.items():
            if limit <= 0 and kind != resource.RLIMIT_CORE:
                continue
            _, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)  # an unprivileged process cannot raise its hard limit
            resource.setrlimit(kind, (limit, limit))
    except (OSError, ValueError) as exc:
        return f"unavailable: {exc}"
    # An oversized write fails with EFBIG (the finding says which limit) instead of a signal.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return ACTIVE


def enter_namespaces(libc: Any) -> Layers:
    """A user + network + PID namespace; the caller continues as the PID namespace's init.

    The process that called ``unshare`` stays outside the new PID namespace, so it forks: the
    child (pid 1 inside) returns and runs the job; this process waits for it and ends the same
    way, so the parent sees one exit status. ``PR_SET_PDEATHSIG`` is armed in both.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWPID
    if libc.unshare(flags) != 0:
        why = _why()
        # Without a user namespace, root can still have a network namespace of its own.
        net = ACTIVE if libc.unshare(_CLONE_NEWNET) == 0 else _why()
        return {"namespaces": why, "network_namespace": net, "pid_namespace": why}
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError as exc:  # unmapped: still contained, files just look owned by nobody
        sys.stderr.write(f"gasbuild sandbox: uid map not written: {exc}\n")
    _become_init(libc)
    return {"namespaces": ACTIVE, "network_namespace": ACTIVE, "pid_namespace": ACTIVE}


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def _become_init(libc: Any) -> None:
    """Fork; the child returns (pid 1 of the new namespace), the parent mirrors its end."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # the group is killed by the runner, not here
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def deny_sockets(libc: Any) -> str:
    """A seccomp filter: ``socket()`` for network families returns EACCES."""
    arch = _SECCOMP_ARCH.get(platform.machine())
    if arch is None:
        return f"unavailable: no filter for {platform.machine()}"
    audit_arch, nr_socket = arch
    refuse = _SECCOMP_RET_ERRNO | _EACCES
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    families = len(_REFUSED_FAMILIES)
    program = [
        (ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq_k, 1, 0, audit_arch),
        (ret_k, 0, 0, refuse),  # another ABI (i386 socketcall): refuse outright
        (ld_w_abs, 0, 0, 0),  # seccomp_data.nr
        (jge_k, 0, 1, _X32_BIT),
        (ret_k, 0, 0, refuse),  # x32 syscalls
        (jeq_k, 0, families + 1, nr_socket),
        (ld_w_abs, 0, 0, 16),  # args[0], low 32 bits: the family
    ]
    for index, family in enumerate(_REFUSED_FAMILIES):
        program.append((jeq_k, families - index, 0, family))
    program += [(ret_k, 0, 0, _SECCOMP_RET_ALLOW), (ret_k, 0, 0, refuse)]
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw)
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        return _why()
    return ACTIVE


def landlock_abi(libc: Any) -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = libc.syscall(_SYS_LANDLOCK[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def landlock(libc: Any, read: list[str], write: list[str]) -> Layers:
    """Reads beneath ``read`` (and the system's), writes beneath ``write``; no TCP, no
    signals out. Paths that do not exist are skipped."""
    abi = landlock_abi(libc)
    if abi < 1:
        why = _why("Landlock: ")
        return {"landlock_fs": why, "landlock_net": why, "landlock_scope": why}
    handled = _FS_ALL_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    handled |= _FS_IOCTL_DEV if abi >= 5 else 0
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = ctypes.create_string_buffer(struct.pack("=QQQ", handled, net, scoped)[:size])
    ruleset = libc.syscall(_SYS_LANDLOCK[0], attr, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        why = _why("Landlock: ")
        return {"landlock_fs": why, "landlock_net": why, "landlock_scope": why}
    try:
        for path in (*SYSTEM_READ, *read):
            _allow(libc, ruleset, path, _READ_RIGHTS & handled)
        for path in (*DEVICE_WRITE, *write):
            _allow(libc, ruleset, path, handled)
        if libc.syscall(_SYS_LANDLOCK[2], ruleset, ctypes.c_uint32(0)) != 0:
            why = _why("Landlock: ")
            return {"landlock_fs": why, "landlock_net": why, "landlock_scope": why}
    finally:
        os.close(ruleset)
    old = f"unavailable: Landlock ABI {abi}"
    return {
        "landlock_fs": ACTIVE,
        "landlock_net": ACTIVE if net else f"{old} (TCP rules need 4)",
        "landlock_scope": ACTIVE if scoped else f"{old} (scopes need 6)",
    }


def _allow(libc: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        beneath = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd))
        if libc.syscall(_SYS_LANDLOCK[1], ruleset, _LANDLOCK_RULE_PATH_BENEATH, beneath, 0):
            raise OSError(ctypes.get_errno(), f"Landlock rule for {path}")
    finally:
        os.close(fd)
