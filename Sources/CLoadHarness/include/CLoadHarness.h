// CLoadHarness: epoll and timerfd for rdbench's register scheduler. Swift's Glibc module does not
// export <sys/epoll.h> or <sys/timerfd.h>; including them here makes them importable.
#ifndef CLOADHARNESS_H
#define CLOADHARNESS_H

#include <sys/epoll.h>
#include <sys/timerfd.h>

#endif
