#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ct_name = "?";
const char *ct_role = "?";

void ct_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: FAIL: %s (%s:%d)\n", ct_name, ct_role, msg, file,
            line);
    fflush(stderr);
    _exit(1);
}

static int keepgoing_failures;

void ct_check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *k = getenv("CT_KEEPGOING");
    if (!k || strcmp(k, "1") != 0)
        ct_fail(file, line, "%s", msg);
    fprintf(stderr, "%s %s: FAIL (going on): %s (%s:%d)\n", ct_name, ct_role, msg, file, line);
    keepgoing_failures++;
}

void ct_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: %s\n", ct_name, ct_role, msg);
}

const char *errno_name(int e)
{
    switch (e) {
#define E(x)                                                                  \
    case x:                                                                   \
        return #x;
        E(EAGAIN) E(EINTR) E(EINPROGRESS) E(EALREADY) E(EISCONN) E(ENOTCONN)
        E(ECONNREFUSED) E(ECONNRESET) E(EPIPE) E(EADDRINUSE) E(EADDRNOTAVAIL)
        E(EINVAL) E(EBADF) E(ENOTSOCK) E(ENOPROTOOPT) E(EAFNOSUPPORT)
        E(ENETUNREACH) E(EHOSTUNREACH) E(ETIMEDOUT) E(EEXIST) E(ENOENT)
        E(EOPNOTSUPP) E(EFAULT) E(EMSGSIZE) E(EDESTADDRREQ) E(ENOMEM)
        E(EACCES) E(EPERM) E(ENOSYS)
#undef E
    case 0:
        return "0";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

static int timeout_s(void)
{
    const char *t = getenv("CT_TIMEOUT");
    return t && atoi(t) > 0 ? atoi(t) : 30;
}

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = ": FAIL: watchdog timeout (CT_TIMEOUT)\n";
    if (write(2, ct_name, strlen(ct_name)) < 0 || write(2, " ", 1) < 0 ||
        write(2, ct_role, strlen(ct_role)) < 0 ||
        write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more we can do */
    }
    _exit(2);
}

int ct_main(int argc, char **argv, const char *name, void (*subject)(void),
            void (*peer)(void))
{
    ct_name = name;
    if (argc != 2 ||
        (strcmp(argv[1], "subject") != 0 && strcmp(argv[1], "peer") != 0)) {
        fprintf(stderr, "usage: %s subject|peer (see c-tests/common.h)\n",
                argv[0]);
        return 2;
    }
    ct_role = argv[1];
    if (!getenv("CT_SYNC")) {
        fprintf(stderr, "%s: CT_SYNC must name a directory\n", name);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_watchdog);
    alarm((unsigned)timeout_s());
    if (strcmp(ct_role, "subject") == 0)
        subject();
    else
        peer();
    if (keepgoing_failures) {
        fprintf(stderr, "%s %s: %d checks failed\n", ct_name, ct_role, keepgoing_failures);
        return 1;
    }
    return 0;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *ct_addr(void) { return env_or("CT_ADDR", "127.0.0.1"); }
const char *ct_peer(void) { return env_or("CT_PEER", "127.0.0.1"); }
const char *ct_addr6(void) { return env_or("CT_ADDR6", "::1"); }
const char *ct_peer6(void) { return env_or("CT_PEER6", "::1"); }

int ct_port(int offset)
{
    int base = atoi(env_or("CT_PORT", "20000"));
    CHECK(offset >= 0 && offset < 50, "port offset %d out of range", offset);
    return base + offset;
}

socklen_t mkaddr(struct sockaddr_storage *ss, int family, const char *host,
                 int port)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        CHECK(inet_pton(AF_INET, host, &sin->sin_addr) == 1,
              "bad IPv4 address '%s'", host);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1,
          "bad IPv6 address '%s'", host);
    return sizeof *sin6;
}

const char *addrstr(const struct sockaddr *sa)
{
    static char bufs[4][80];
    static int next;
    char *b = bufs[next++ % 4];
    char host[64] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(b, 80, "%s:%d", host, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(b, 80, "[%s]:%d", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(b, 80, "(family %d)", sa->sa_family);
    }
    return b;
}

int sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static int same_host(const struct sockaddr *sa, const char *v4, const char *v6)
{
    struct sockaddr_storage want;
    char mapped[80];
    if (sa->sa_family == AF_INET) {
        mkaddr(&want, AF_INET, v4, 0);
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
               ((struct sockaddr_in *)&want)->sin_addr.s_addr;
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    mkaddr(&want, AF_INET6, v6, 0);
    if (memcmp(a, &((struct sockaddr_in6 *)&want)->sin6_addr, sizeof *a) == 0)
        return 1;
    snprintf(mapped, sizeof mapped, "::ffff:%s", v4);
    mkaddr(&want, AF_INET6, mapped, 0);
    return memcmp(a, &((struct sockaddr_in6 *)&want)->sin6_addr, sizeof *a) == 0;
}

int is_subject_addr(const struct sockaddr *sa) { return same_host(sa, ct_addr(), ct_addr6()); }
int is_peer_addr(const struct sockaddr *sa) { return same_host(sa, ct_peer(), ct_peer6()); }

void check_ends(int fd)
{
    struct sockaddr_storage me, them;
    socklen_t ml = sizeof me, tl = sizeof them;
    SYS(getsockname(fd, (struct sockaddr *)&me, &ml));
    SYS(getpeername(fd, (struct sockaddr *)&them, &tl));
    int subject = strcmp(ct_role, "subject") == 0;
    CHECK(subject ? is_subject_addr((struct sockaddr *)&me) : is_peer_addr((struct sockaddr *)&me),
          "local address %s is not the %s's", addrstr((struct sockaddr *)&me), ct_role);
    CHECK(subject ? is_peer_addr((struct sockaddr *)&them) : is_subject_addr((struct sockaddr *)&them),
          "remote address %s is not the %s's", addrstr((struct sockaddr *)&them),
          subject ? "peer" : "subject");
}

int fd_is_unix_socket(int fd)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        FAIL("readlink %s: %s", path, strerror(errno));
    link[n] = 0;
    unsigned long ino;
    if (sscanf(link, "socket:[%lu]", &ino) != 1)
        return 0; /* the in-process stack's eventfd, say */
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        FAIL("/proc/net/unix: %s", strerror(errno));
    char line[512];
    int found = 0;
    /* Num RefCount Protocol Flags Type St Inode [Path] */
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long i;
        if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &i) == 1 && i == ino)
            found = 1;
    }
    fclose(f);
    return found;
}

void check_transport(int fd, const char *what)
{
    const char *e = getenv("CT_EXPECT_UNIX");
    int want = e && strcmp(e, "1") == 0;
    int is = fd_is_unix_socket(fd);
    CHECK(is == want, "%s: fd %d is %san AF_UNIX socket underneath (CT_EXPECT_UNIX=%s)", what,
          fd, is ? "" : "not ", e ? e : "unset");
}

int tcp_listen(int family, const char *host, int port, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, family, host, port);
    int fd = SYS(socket(family, SOCK_STREAM, 0));
    int one = 1;
    SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        FAIL("bind %s: %s", addrstr((struct sockaddr *)&ss), strerror(errno));
    SYS(listen(fd, backlog));
    return fd;
}

int tcp_connect(int family, const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, family, host, port);
    int fd = SYS(socket(family, SOCK_STREAM, 0));
    if (connect(fd, (struct sockaddr *)&ss, len) < 0)
        FAIL("connect %s: %s", addrstr((struct sockaddr *)&ss),
             strerror(errno));
    check_ends(fd);
    return fd;
}

int udp_bind(int family, const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, family, host, port);
    int fd = SYS(socket(family, SOCK_DGRAM, 0));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        FAIL("bind udp %s: %s", addrstr((struct sockaddr *)&ss),
             strerror(errno));
    return fd;
}

int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t end = now_ms() + ms;
    for (;;) {
        int left = (int)(end - now_ms());
        int n = poll(&p, 1, left < 0 ? 0 : left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            FAIL("poll fd %d: %s", fd, strerror(errno));
        return n == 0 ? 0 : p.revents;
    }
}

int accept_timeout(int lfd, int ms)
{
    CHECK(wait_fd(lfd, POLLIN, ms) & POLLIN,
          "no connection to accept within %d ms", ms);
    int fd = SYS(accept(lfd, NULL, NULL));
    check_ends(fd);
    return fd;
}

void set_nonblock(int fd, int on)
{
    int fl = SYS(fcntl(fd, F_GETFL));
    SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            wait_fd(fd, POLLOUT, 1000);
            continue;
        }
        if (n <= 0)
            FAIL("send (%zu left): %s", len, n < 0 ? strerror(errno) : "0");
        p += n;
        len -= (size_t)n;
    }
}

void recv_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t want = len;
    while (len > 0) {
        int ev = wait_fd(fd, POLLIN, timeout_s() * 1000);
        CHECK(ev, "recv: nothing within the timeout (%zu of %zu bytes in)",
              want - len, want);
        ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            FAIL("recv (%zu of %zu in): %s", want - len, want,
                 strerror(errno));
        if (n == 0)
            FAIL("recv: EOF after %zu of %zu bytes", want - len, want);
        p += n;
        len -= (size_t)n;
    }
}

void expect_eof(int fd, int ms)
{
    char c;
    int ev = wait_fd(fd, POLLIN, ms);
    CHECK(ev, "expected EOF within %d ms, fd not readable", ms);
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n < 0)
        FAIL("expected EOF, recv failed: %s", strerror(errno));
    CHECK(n == 0, "expected EOF, got data byte 0x%02x", (unsigned char)c);
}

static void sync_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", getenv("CT_SYNC"), name);
}

void sync_signal(const char *name)
{
    char path[512];
    sync_path(path, sizeof path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        FAIL("sync_signal %s: %s", path, strerror(errno));
    close(fd);
}

int sync_exists(const char *name)
{
    char path[512];
    struct stat st;
    sync_path(path, sizeof path, name);
    return stat(path, &st) == 0;
}

void sync_wait(const char *name)
{
    int64_t end = now_ms() + timeout_s() * 1000;
    while (!sync_exists(name)) {
        if (now_ms() > end)
            FAIL("sync_wait '%s': the other side never got there", name);
        sleep_ms(5);
    }
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
