// Implementation of CMmsg.h: forwarding only; see the header for why it exists.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include "CMmsg.h"

_Static_assert(sizeof(struct CMmsg_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr size");
_Static_assert(offsetof(struct CMmsg_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr.msg_len offset");
_Static_assert(CMmsg_MSG_WAITFORONE == MSG_WAITFORONE, "MSG_WAITFORONE");

int CMmsg_recvmmsg(int fd, struct CMmsg_mmsghdr *msgs, unsigned int count, int flags) {
    int r = recvmmsg(fd, (struct mmsghdr *)msgs, count, flags, NULL);
    return r < 0 ? -errno : r;
}

int CMmsg_sendmmsg(int fd, struct CMmsg_mmsghdr *msgs, unsigned int count, int flags) {
    int r = sendmmsg(fd, (struct mmsghdr *)msgs, count, flags);
    return r < 0 ? -errno : r;
}
