// CURing: the C side of RingDesk's io_uring engine.
//
// Rules (docs/ARCHITECTURE.md, STYLE.md habit 2): this shim holds no logic. A symbol is here only
// because Swift cannot reach the C one directly; the comment on each says why. Everything that
// Swift imports fine from <liburing.h> (the static inline io_uring_prep_* builders, io_uring_cqe_seen,
// io_uring_buf_ring_add, ...) is used from Swift as is.
#ifndef CURING_H
#define CURING_H

// <sys/types.h> must come before <liburing.h>: liburing's headers otherwise pull in kernel
// typedefs that clash with the Glibc module Swift builds, and Swift files importing Glibc break.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <stdint.h>
#include <liburing.h>

// MARK: SQE flags. Defined as `(1U << IOSQE_*_BIT)` macros, which Swift does not import.
static const uint8_t CURing_IOSQE_FIXED_FILE = IOSQE_FIXED_FILE;
static const uint8_t CURing_IOSQE_IO_DRAIN = IOSQE_IO_DRAIN;
static const uint8_t CURing_IOSQE_IO_LINK = IOSQE_IO_LINK;
static const uint8_t CURing_IOSQE_IO_HARDLINK = IOSQE_IO_HARDLINK;
static const uint8_t CURing_IOSQE_ASYNC = IOSQE_ASYNC;
static const uint8_t CURing_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const uint8_t CURing_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;

// MARK: Setup, CQE and op flags. Plain macros of shifted values; imported inconsistently across
// Swift versions, so they are pinned here once with their C spelling.
static const uint32_t CURing_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const uint32_t CURing_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
static const uint32_t CURing_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
static const uint32_t CURing_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
static const uint32_t CURing_SETUP_CQSIZE = IORING_SETUP_CQSIZE;
static const uint32_t CURing_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
static const uint32_t CURing_CQE_F_MORE = IORING_CQE_F_MORE;
static const uint32_t CURing_CQE_F_SOCK_NONEMPTY = IORING_CQE_F_SOCK_NONEMPTY;
static const uint32_t CURing_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;
static const uint32_t CURing_RECVSEND_POLL_FIRST = IORING_RECVSEND_POLL_FIRST;
static const uint32_t CURing_POLL_ADD_MULTI = IORING_POLL_ADD_MULTI;
static const uint32_t CURing_ASYNC_CANCEL_ALL = IORING_ASYNC_CANCEL_ALL;
static const uint32_t CURing_ASYNC_CANCEL_FD = IORING_ASYNC_CANCEL_FD;
static const uint32_t CURing_ASYNC_CANCEL_ANY = IORING_ASYNC_CANCEL_ANY;
static const uint32_t CURing_TIMEOUT_MULTISHOT = 1U << 6; // IORING_TIMEOUT_MULTISHOT (6.4+); absent from liburing 2.3's header.

// MARK: CQE iteration. io_uring_for_each_cqe is a macro (a for-loop header), which Swift cannot
// expand. This fills `cqes` with up to `max` ready CQEs without waiting and returns the count;
// the caller must io_uring_cq_advance(ring, count) after handling them.
static inline unsigned CURing_peek_batch(struct io_uring *ring, struct io_uring_cqe **cqes, unsigned max) {
    return io_uring_peek_batch_cqe(ring, cqes, max);
}

// MARK: CPU affinity. CPU_SET/CPU_ISSET/CPU_COUNT are macros over cpu_set_t bit arrays.
// Returns 0 or -errno.
int CURing_pin_current_thread(int cpu);
// Fills `out` (capacity `max`) with the CPUs the calling thread may run on, in ascending order;
// returns how many, or -errno.
int CURing_current_affinity(int *out, int max);

// MARK: Pipes. F_SETPIPE_SZ / F_GETPIPE_SZ are Linux-only fcntl commands hidden behind _GNU_SOURCE,
// which Swift's Glibc module does not define. Both return the resulting size or -errno.
int CURing_set_pipe_size(int fd, int size);
int CURing_get_pipe_size(int fd);
// pipe2(O_NONBLOCK | O_CLOEXEC); returns 0 or -errno.
int CURing_pipe_nonblocking(int fds[2]);

// MARK: Splice flags. SPLICE_F_* need _GNU_SOURCE as well.
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
/// splice(2) between two descriptors without offsets (sockets and pipes), called directly:
/// returns the bytes moved, or -errno. Through syscall(2) because glibc declares splice only
/// under _GNU_SOURCE.
static inline long CURing_splice(int fd_in, int fd_out, size_t len, unsigned int flags) {
    long r = syscall(SYS_splice, fd_in, (void *)0, fd_out, (void *)0, len, flags);
    return r < 0 ? -(long)errno : r;
}
static const unsigned int CURing_SPLICE_F_MOVE = 1;     // SPLICE_F_MOVE
static const unsigned int CURing_SPLICE_F_NONBLOCK = 2; // SPLICE_F_NONBLOCK
static const unsigned int CURing_SPLICE_F_MORE = 4;     // SPLICE_F_MORE

// MARK: Batched waiting. liburing 2.3 has no io_uring_submit_and_wait_min_timeout (2.8), and its
// getevents argument struct still calls the kernel's `min_wait_usec` field `pad`.
// IORING_FEAT_MIN_TIMEOUT (kernel 6.12+): the kernel honours `min_wait_usec`.
static const uint32_t CURing_FEAT_MIN_TIMEOUT = 1U << 15;
// Submits every queued SQE and waits for `wait_nr` completions, but for at most `min_wait_usec`
// microseconds: after that one completion is enough; with none by then, the first one ends the
// wait, or `timeout_ns` (which must be longer: without it the kernel ends the wait empty when the
// minimum wait is over). Non-SQPOLL rings only. Returns what io_uring_enter returns (submitted
// count or -errno; -ETIME after `timeout_ns`).
int CURing_submit_and_wait_min(struct io_uring *ring, unsigned wait_nr, unsigned min_wait_usec, long long timeout_ns);

// MARK: eventfd. <sys/eventfd.h> is not part of Swift's Glibc module map.
// Returns the descriptor (EFD_CLOEXEC | EFD_NONBLOCK) or -errno.
int CURing_eventfd(void);

// MARK: Network namespaces. setns(2) and CLONE_NEWNET need _GNU_SOURCE. Moves the calling
// thread into the network namespace `fd` refers to; returns 0 or -errno.
int CURing_setns_net(int fd);

// MARK: Socket options Swift's Glibc does not surface as plain constants on every libc version.
static const int CURing_SO_REUSEPORT = SO_REUSEPORT;
static const int CURing_IPV6_V6ONLY = IPV6_V6ONLY;

// MARK: Probe. The opcode numbers are an anonymous enum in <liburing/io_uring.h>; exposing the
// ones the engine needs as named functions keeps the Swift probe readable and lets it report
// missing ops by name. Returns 1 if supported, 0 if not.
int CURing_opcode_supported(const struct io_uring_probe *probe, int op);
int CURing_op_count(void);
const char *CURing_op_name(int index);
int CURing_op_code(int index);

// Try to create (and immediately destroy) a ring with `flags`; returns 0 or -errno. Used by the
// startup probe to tell seccomp EPERM / sysctl / ENOSYS apart before any worker starts.
int CURing_try_ring(unsigned entries, unsigned flags);

#endif
