/* Shared helpers for the C tests.
 *
 * Every test program runs in two roles, chosen by argv[1]:
 *   subject  the side under test (run under the shim in shim mode),
 *   peer     its counterpart, always on kernel sockets.
 * The runner starts both at once; they meet through files in $CT_SYNC
 * (sync_signal / sync_wait), never through the network they are testing.
 *
 * Environment (defaults are the kernel-mode loopback values):
 *   CT_ADDR   the subject's own IPv4 address      (127.0.0.1; shim: 10.77.0.2)
 *   CT_PEER   the peer's IPv4 address             (127.0.0.1; shim: 10.77.0.1)
 *   CT_ADDR6  the subject's own IPv6 address      (::1; shim: fd77::2)
 *   CT_PEER6  the peer's IPv6 address             (::1; shim: fd77::1)
 *   CT_PORT   first of 50 ports the test may use  (20000)
 *   CT_SYNC   directory for sync files            (required)
 *   CT_TIMEOUT seconds before the watchdog fails the program (30)
 */
#ifndef CT_COMMON_H
#define CT_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

extern const char *ct_name; /* test name, for messages */
extern const char *ct_role; /* "subject" or "peer" */

/* Fails the program: "NAME ROLE: FAIL: message" on stderr, exit 1. */
void ct_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* The same, but with CT_KEEPGOING=1 in the environment it only reports
 * and returns (the program then exits 1 at the end): to see every check a
 * subject fails, not just the first. CHECK, SYS and ERR use it. */
void ct_check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ct_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define FAIL(...) ct_fail(__FILE__, __LINE__, __VA_ARGS__)
/* CHECK(cond, fmt, ...): fail with the message unless cond holds. */
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) ct_check_fail(__FILE__, __LINE__, __VA_ARGS__);          \
    } while (0)
/* SYS(expr): expr is a system call that must not return -1. */
#define SYS(expr)                                                             \
    ({                                                                        \
        __typeof__(expr) ct_r_ = (expr);                                      \
        if (ct_r_ == -1)                                                      \
            ct_check_fail(__FILE__, __LINE__, "%s: %s", #expr,               \
                          strerror(errno));                                   \
        ct_r_;                                                                \
    })
/* ERR(expr, E): expr must fail with errno E. */
#define ERR(expr, e)                                                          \
    do {                                                                      \
        errno = 0;                                                            \
        long ct_r_ = (long)(expr);                                            \
        int ct_e_ = errno;                                                    \
        if (ct_r_ != -1 || ct_e_ != (e))                                      \
            ct_check_fail(__FILE__, __LINE__,                                 \
                          "%s: expected -1 %s, got %ld (%s)",                 \
                    #expr, errno_name(e), ct_r_,                              \
                    ct_r_ == -1 ? errno_name(ct_e_) : "no error");            \
    } while (0)

const char *errno_name(int e);

/* Role dispatch: parses argv, arms the watchdog, runs one of the two
 * functions, and exits 0 when it returns. */
int ct_main(int argc, char **argv, const char *name, void (*subject)(void),
            void (*peer)(void));

/* Addresses and ports from the environment. */
const char *ct_addr(void);
const char *ct_peer(void);
const char *ct_addr6(void);
const char *ct_peer6(void);
int ct_port(int offset);

/* Builds a sockaddr for (family, text address, port); returns its length. */
socklen_t mkaddr(struct sockaddr_storage *ss, int family, const char *host,
                 int port);
/* "addr:port" of a sockaddr, in a static buffer (one of four rotating). */
const char *addrstr(const struct sockaddr *sa);
int sa_port(const struct sockaddr *sa);

/* Sockets built from the helpers above; each fails the test on error. */
int tcp_listen(int family, const char *host, int port, int backlog);
int tcp_connect(int family, const char *host, int port);
int udp_bind(int family, const char *host, int port);
int accept_timeout(int lfd, int ms);

/* Whether a sockaddr is one of the subject's addresses (CT_ADDR, CT_ADDR6
 * or CT_ADDR as v4-mapped IPv6), or one of the peer's. In shim mode this is
 * what proves the subject's traffic really went through the stack: on
 * kernel sockets it would come from the kernel's own 10.77.0.1. */
int is_subject_addr(const struct sockaddr *sa);
int is_peer_addr(const struct sockaddr *sa);
/* Fails unless fd's local address is this role's own and its remote
 * address the other role's (connected TCP or connected UDP). */
void check_ends(int fd);

/* Whether fd is an AF_UNIX socket underneath (its inode is listed in
 * /proc/net/unix), whatever the shim reports: the shared stack's sockets
 * are. check_transport fails unless that matches CT_EXPECT_UNIX (1: the
 * shared stack; unset or 0: a kernel TCP/UDP socket or the in-process
 * stack). */
int fd_is_unix_socket(int fd);
void check_transport(int fd, const char *what);

/* Full-length I/O with a deadline; fail the test on error or timeout. */
void send_all(int fd, const void *buf, size_t len);
void recv_exact(int fd, void *buf, size_t len);
/* Expects EOF (recv returns 0) within the timeout. */
void expect_eof(int fd, int ms);
/* Waits up to ms for events on fd; returns revents (0 on timeout). */
int wait_fd(int fd, short events, int ms);
void set_nonblock(int fd, int on);

/* File-based rendezvous between subject and peer. */
void sync_signal(const char *name);
void sync_wait(const char *name);
int sync_exists(const char *name);

void sleep_ms(int ms);
int64_t now_ms(void);

#endif
