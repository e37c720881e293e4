/* containerd's default seccomp profile (contrib/seccomp DefaultProfile, containerd 1.6): default action
 * errno, the host's architectures, an allow list, personality values, ptrace on kernels >= 4.8, per-arch
 * calls, calls unlocked by capabilities in the bounding set, and without CAP_SYS_ADMIN clone without
 * namespace flags and clone3 failing with ENOSYS (so that libcs fall back to clone). */
#include "spec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#define CLONE_NS_FLAGS 0x7E020000 /* NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP */

static const char *const allowed[] = {
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
        "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
        "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
        "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
        "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
        "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
        "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64",
        "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
        "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
        "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
        "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
        "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
        "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
        "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
        "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat",
        "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64",
        "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
        "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
        "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
        "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep",
        "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
        "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
        "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
        "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
        "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
        "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
        "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
        "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
        "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
        "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
        "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
        "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socket", "socketcall",
        "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
        "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
        "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
        "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64",
        "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
        NULL,
};

struct cap_calls {
        const char *cap;
        const char *const names[25];
};

/* in containerd's switch order; a capability may unlock several calls */
static const struct cap_calls by_cap[] = {
        {"CAP_DAC_READ_SEARCH", {"open_by_handle_at", NULL}},
        {"CAP_SYS_ADMIN",
         {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
          "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open", "quotactl",
          "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare", NULL}},
        {"CAP_SYS_BOOT", {"reboot", NULL}},
        {"CAP_SYS_CHROOT", {"chroot", NULL}},
        {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module", NULL}},
        {"CAP_SYS_PACCT", {"acct", NULL}},
        {"CAP_SYS_PTRACE",
         {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace", NULL}},
        {"CAP_SYS_RAWIO", {"iopl", "ioperm", NULL}},
        {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64", NULL}},
        {"CAP_SYS_TTY_CONFIG", {"vhangup", NULL}},
        {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", NULL}},
        {"CAP_SYSLOG", {"syslog", NULL}},
        {"CAP_BPF", {"bpf", NULL}},
        {"CAP_PERFMON", {"perf_event_open", NULL}},
};

static json_t *names_json(const char *const *names)
{
        json_t *a = json_array();
        for (; *names; names++)
                json_array_append_new(a, json_string(*names));
        return a;
}

static json_t *allow(const char *const *names)
{
        return json_pack("{s:o, s:s}", "names", names_json(names), "action", "SCMP_ACT_ALLOW");
}

static json_t *allow_arg(const char *name, unsigned index, uint64_t value, const char *op)
{
        return json_pack("{s:[s], s:s, s:[{s:i, s:I, s:s}]}", "names", name, "action", "SCMP_ACT_ALLOW", "args",
                         "index", (int)index, "value", (json_int_t)value, "op", op);
}

/* kernelversion.GreaterEqualThan(4.8) on the running kernel */
static bool kernel_at_least(int major, int minor)
{
        struct utsname u;
        int ma = 0, mi = 0;
        if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) < 2)
                return false;
        return ma > major || (ma == major && mi >= minor);
}

json_t *oci_seccomp_default_profile(const json_t *spec)
{
        json_t *arches = json_array(), *calls = json_array();
        const char *const *arch_calls = NULL;
#if defined(__x86_64__)
        static const char *const a[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL};
        static const char *const ac[] = {"arch_prctl", "modify_ldt", NULL};
#elif defined(__aarch64__)
        static const char *const a[] = {"SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", NULL};
        static const char *const ac[] = {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                                         "breakpoint", "cacheflush", "set_tls", NULL};
#elif defined(__s390x__)
        static const char *const a[] = {"SCMP_ARCH_S390", "SCMP_ARCH_S390X", NULL};
        static const char *const ac[] = {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr", NULL};
#elif defined(__riscv) && __riscv_xlen == 64
        static const char *const a[] = {"SCMP_ARCH_RISCV64", NULL};
        static const char *const ac[] = {"riscv_flush_icache", NULL};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        static const char *const a[] = {NULL}; /* containerd lists no ppc64le architectures */
        static const char *const ac[] = {"sync_file_range2", "swapcontext", NULL};
#else
        static const char *const a[] = {NULL};
        static const char *const *ac = NULL;
#endif
        for (const char *const *p = a; *p; p++)
                json_array_append_new(arches, json_string(*p));
        arch_calls = ac;

        json_array_append_new(calls, allow(allowed));
        static const uint64_t personalities[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};
        for (size_t i = 0; i < sizeof(personalities) / sizeof(personalities[0]); i++)
                json_array_append_new(calls, allow_arg("personality", 0, personalities[i], "SCMP_CMP_EQ"));
        if (kernel_at_least(4, 8)) {
                static const char *const ptrace[] = {"ptrace", NULL};
                json_array_append_new(calls, allow(ptrace));
        }
        if (arch_calls)
                json_array_append_new(calls, allow(arch_calls));

        bool admin = false;
        json_t *bounding = json_object_get(json_object_get(json_object_get(spec, "process"), "capabilities"),
                                           "bounding");
        size_t i;
        json_t *v;
        json_array_foreach(bounding, i, v)
        {
                const char *c = json_string_value(v);
                for (size_t k = 0; c && k < sizeof(by_cap) / sizeof(by_cap[0]); k++) {
                        if (strcmp(c, by_cap[k].cap) != 0)
                                continue;
                        admin |= strcmp(c, "CAP_SYS_ADMIN") == 0;
                        json_array_append_new(calls, allow(by_cap[k].names));
                }
        }
        if (!admin) {
#if defined(__s390x__)
                json_array_append_new(calls, json_pack("{s:[s], s:s, s:[{s:i, s:I, s:s}]}", "names", "clone", "action",
                                                       "SCMP_ACT_ALLOW", "args", "index", 1, "value",
                                                       (json_int_t)CLONE_NS_FLAGS, "op", "SCMP_CMP_MASKED_EQ"));
#else
                json_array_append_new(calls, json_pack("{s:[s], s:s, s:[{s:i, s:I, s:s}]}", "names", "clone", "action",
                                                       "SCMP_ACT_ALLOW", "args", "index", 0, "value",
                                                       (json_int_t)CLONE_NS_FLAGS, "op", "SCMP_CMP_MASKED_EQ"));
#endif
                json_array_append_new(calls, json_pack("{s:[s], s:s, s:i}", "names", "clone3", "action",
                                                       "SCMP_ACT_ERRNO", "errnoRet", ENOSYS));
        }
        json_t *profile = json_pack("{s:s, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "architectures", arches,
                                    "syscalls", calls);
        if (json_array_size(arches) == 0) /* Go's empty slice, omitempty */
                json_object_del(profile, "architectures");
        return profile;
}
