// CMmsg: recvmmsg/sendmmsg for engine-bench's baseline server and load generator.
//
// Why a shim: `struct mmsghdr`, `recvmmsg`, `sendmmsg` and `MSG_WAITFORONE` are declared only
// under _GNU_SOURCE, which Swift's Glibc module is not built with. The struct is mirrored here
// (layout checked against glibc's with _Static_assert in shim.c) and the calls are forwarded.
// Bench only: the servers never use these (they do datagrams on io_uring).
#ifndef CMMSG_H
#define CMMSG_H

#include <sys/types.h>
#include <sys/socket.h>

// Same layout as glibc's `struct mmsghdr`.
struct CMmsg_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

// MSG_WAITFORONE: block for the first datagram only, then take what is queued.
static const int CMmsg_MSG_WAITFORONE = 0x10000;

// recvmmsg(fd, msgs, count, flags, NULL); returns the datagrams received or -errno.
int CMmsg_recvmmsg(int fd, struct CMmsg_mmsghdr *msgs, unsigned int count, int flags);
// sendmmsg(fd, msgs, count, flags); returns the datagrams sent or -errno.
int CMmsg_sendmmsg(int fd, struct CMmsg_mmsghdr *msgs, unsigned int count, int flags);

#endif
