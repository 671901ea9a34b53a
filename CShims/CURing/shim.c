// Implementation of CURing.h. Only thin wrappers; see the header for why each exists.
#define _GNU_SOURCE
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include "CURing.h"

int CURing_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) return -errno;
    return 0;
}

int CURing_current_affinity(int *out, int max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -errno;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++) {
        if (CPU_ISSET(cpu, &set)) out[n++] = cpu;
    }
    return n;
}

int CURing_set_pipe_size(int fd, int size) {
    int r = fcntl(fd, F_SETPIPE_SZ, size);
    return r < 0 ? -errno : r;
}

int CURing_get_pipe_size(int fd) {
    int r = fcntl(fd, F_GETPIPE_SZ);
    return r < 0 ? -errno : r;
}

int CURing_pipe_nonblocking(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 ? 0 : -errno;
}

int CURing_opcode_supported(const struct io_uring_probe *probe, int op) {
    return io_uring_opcode_supported(probe, op);
}

// The opcodes RingDesk's engine submits. Keep in sync with URing/Probe.swift's requirement list.
static const struct { const char *name; int code; } required_ops[] = {
    {"ACCEPT", IORING_OP_ACCEPT},
    {"RECV", IORING_OP_RECV},
    {"RECVMSG", IORING_OP_RECVMSG},
    {"SEND", IORING_OP_SEND},
    {"SENDMSG", IORING_OP_SENDMSG},
    {"SPLICE", IORING_OP_SPLICE},
    {"POLL_ADD", IORING_OP_POLL_ADD},
    {"POLL_REMOVE", IORING_OP_POLL_REMOVE},
    {"TIMEOUT", IORING_OP_TIMEOUT},
    {"LINK_TIMEOUT", IORING_OP_LINK_TIMEOUT},
    {"ASYNC_CANCEL", IORING_OP_ASYNC_CANCEL},
    {"CLOSE", IORING_OP_CLOSE},
    {"PROVIDE_BUFFERS", IORING_OP_PROVIDE_BUFFERS},
    {"MSG_RING", IORING_OP_MSG_RING},
    {"SHUTDOWN", IORING_OP_SHUTDOWN},
};

int CURing_op_count(void) { return (int)(sizeof(required_ops) / sizeof(required_ops[0])); }
const char *CURing_op_name(int index) { return required_ops[index].name; }
int CURing_op_code(int index) { return required_ops[index].code; }

int CURing_try_ring(unsigned entries, unsigned flags) {
    struct io_uring ring;
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = flags;
    int r = io_uring_queue_init_params(entries, &ring, &params);
    if (r < 0) return r;
    io_uring_queue_exit(&ring);
    return 0;
}

int CURing_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int CURing_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

int CURing_submit_and_wait_min(struct io_uring *ring, unsigned wait_nr, unsigned min_wait_usec, long long timeout_ns) {
    // Publish the queued SQEs the way liburing's submit does: SQE index array (identity, as
    // io_uring_get_sqe hands SQEs out in order), then the tail with release semantics.
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    for (unsigned i = sq->sqe_head; i != tail; i++) sq->array[i & sq->ring_mask] = i & sq->ring_mask;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    unsigned to_submit = tail - io_uring_smp_load_acquire(sq->khead);
    struct {
        uint64_t sigmask;
        uint32_t sigmask_sz;
        uint32_t min_wait_usec;
        uint64_t ts;
    } arg = { 0, _NSIG / 8, min_wait_usec, 0 };
    struct __kernel_timespec ts = { timeout_ns / 1000000000LL, timeout_ns % 1000000000LL };
    arg.ts = (uint64_t)(uintptr_t)&ts;
    return io_uring_enter2(ring->ring_fd, to_submit, wait_nr,
                           IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, (sigset_t *)&arg, sizeof(arg));
}
