/* What the shared stack (USTACK_SHARED=on: every socket a real AF_UNIX fd
 * served by ustackd) promises beyond one process, each subtest against a
 * kernel peer, every one checking the bytes that cross:
 *   fork    one connection written and read by a parent and its forked
 *           child; the peer sees EOF only once both have closed;
 *   exec    a socket without CLOEXEC survives execve of a helper (this
 *           binary, `exec-helper FD ...`), which names both ends and does
 *           I/O; a SOCK_CLOEXEC socket does not survive;
 *   scm     a connected socket passed with SCM_RIGHTS to a forked child
 *           and to an exec'd process: names and I/O there;
 *   stat    fstat says S_ISSOCK, SO_TYPE/SO_DOMAIN/SO_PROTOCOL are right,
 *           for TCP and UDP, v4 and v6;
 *   accept  two processes accept on one inherited listener: 20 peer
 *           connections, each served by exactly one, ten each;
 *   refuse  ECONNREFUSED from a closed port: non-blocking (poll POLLOUT,
 *           SO_ERROR) and blocking, v4 and v6;
 *   pollerr a refused non-blocking connect polls POLLOUT|POLLERR|POLLHUP,
 *           as on Linux;
 *   udp     sendto/recvfrom with a kernel echo (the sender's address as
 *           the peer saw it is checked against getsockname), connected
 *           send/recv, v4 and v6.
 * CT_SHARED_ONLY=a,b (both roles) runs only those subtests.
 *
 * Ports: 0 fork, 1 exec, 2 scm, 3 stat, 4 accept (subject's listener),
 * 5 closed, 6 udp v4 echo, 7 udp v4 connected echo, 8 udp v6 echo. */
#include "cmdpeer.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

static const char *self_exe = "/proc/self/exe";

static int want(const char *name)
{
    const char *only = getenv("CT_SHARED_ONLY");
    if (!only || !*only)
        return 1;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int timeout_ms(void)
{
    const char *t = getenv("CT_TIMEOUT");
    return (t && atoi(t) > 0 ? atoi(t) : 30) * 1000;
}

/* Waits for a child (hang guard: the watchdog's timeout); its exit status,
 * or 128+signal. */
static int wait_child(pid_t pid)
{
    int st;
    int64_t end = now_ms() + timeout_ms();
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == pid)
            break;
        if (now_ms() > end)
            FAIL("child %d did not exit", (int)pid);
        sleep_ms(5);
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static pid_t fork_child(void)
{
    pid_t pid = SYS(fork());
    if (pid == 0) {
        /* Still the subject (check_ends goes by the role); the messages
         * say which process. */
        alarm((unsigned)(timeout_ms() / 1000)); /* alarms are not inherited */
    }
    return pid;
}

/* 'd' -> 'D' and 'D' -> 1000 x 'B' on a cmdpeer connection. */
static void ping(int fd, const char *when)
{
    char c = 0, big[1000];
    send_all(fd, "d", 1);
    recv_exact(fd, &c, 1);
    CHECK(c == 'D', "%s: reply 0x%02x, want 'D'", when, (unsigned char)c);
    send_all(fd, "D", 1);
    recv_exact(fd, big, sizeof big);
    for (size_t i = 0; i < sizeof big; i++)
        CHECK(big[i] == 'B', "%s: byte %zu of 1000 is 0x%02x", when, i, (unsigned char)big[i]);
}

static void quit(int fd, const char *when)
{
    send_all(fd, "q", 1);
    expect_eof(fd, 10000);
    (void)when;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    SYS(getsockname(fd, (struct sockaddr *)&ss, &len));
    return sa_port((struct sockaddr *)&ss);
}

/* Both ends of a connected AF_INET TCP socket, as seen by someone who did
 * not make it: ours is the subject's address and `lport` (when not 0),
 * theirs the peer's address and `rport`. */
static void check_inet_ends(int fd, int lport, int rport, const char *who)
{
    struct sockaddr_storage me, them;
    socklen_t ml = sizeof me, tl = sizeof them;
    SYS(getsockname(fd, (struct sockaddr *)&me, &ml));
    SYS(getpeername(fd, (struct sockaddr *)&them, &tl));
    CHECK(me.ss_family == AF_INET && ml == sizeof(struct sockaddr_in),
          "%s: getsockname family %d len %u, want AF_INET", who, me.ss_family, ml);
    CHECK(them.ss_family == AF_INET && tl == sizeof(struct sockaddr_in),
          "%s: getpeername family %d len %u, want AF_INET", who, them.ss_family, tl);
    CHECK(is_subject_addr((struct sockaddr *)&me), "%s: local %s is not the subject's", who,
          addrstr((struct sockaddr *)&me));
    CHECK(is_peer_addr((struct sockaddr *)&them), "%s: remote %s is not the peer's", who,
          addrstr((struct sockaddr *)&them));
    if (lport)
        CHECK(sa_port((struct sockaddr *)&me) == lport, "%s: local port %d, want %d", who,
              sa_port((struct sockaddr *)&me), lport);
    CHECK(sa_port((struct sockaddr *)&them) == rport, "%s: remote port %d, want %d", who,
          sa_port((struct sockaddr *)&them), rport);
}

static void check_issock(int fd, int family, int type, int proto, const char *what)
{
    check_transport(fd, what);
    struct stat st;
    SYS(fstat(fd, &st));
    CHECK(S_ISSOCK(st.st_mode), "%s: fstat mode 0%o is not S_ISSOCK", what, (unsigned)st.st_mode);
    int v = -1;
    socklen_t len = sizeof v;
    SYS(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
    CHECK(len == sizeof v && v == type, "%s: SO_TYPE %d (len %u), want %d", what, v, len, type);
    v = -1;
    len = sizeof v;
    SYS(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len));
    CHECK(len == sizeof v && v == family, "%s: SO_DOMAIN %d (len %u), want %d", what, v, len,
          family);
    v = -1;
    len = sizeof v;
    SYS(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len));
    CHECK(len == sizeof v && v == proto, "%s: SO_PROTOCOL %d (len %u), want %d", what, v, len,
          proto);
}

/* ---- fork: one connection, two writers, two readers ------------------ */

/* Writer w's i-th byte: (w << 7) | (i % 128). The peer checks each
 * writer's bytes arrive whole and in order, however the two interleave. */
#define FORK_HALF 50000
#define FORK_REPLY 2000

static void fork_write(int fd, int w)
{
    static char buf[FORK_HALF];
    for (int i = 0; i < FORK_HALF; i++)
        buf[i] = (char)((w << 7) | (i % 128));
    /* In pieces, so the two writers really interleave. */
    for (int off = 0; off < FORK_HALF; off += 5000)
        send_all(fd, buf + off, 5000);
}

static void fork_read(int fd, const char *who)
{
    char buf[FORK_REPLY / 2];
    recv_exact(fd, buf, sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        CHECK(buf[i] == 'R', "fork: %s: reply byte %zu is 0x%02x", who, i, (unsigned char)buf[i]);
}

static void subject_fork(void)
{
    sync_wait("fork-ready");
    int fd = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    pid_t pid = fork_child();
    if (pid == 0) {
        check_transport(fd, "fork: the child's copy");
        fork_write(fd, 0);
        fork_read(fd, "child");
        SYS(close(fd));
        _exit(0);
    }
    fork_write(fd, 1);
    fork_read(fd, "parent");
    CHECK(wait_child(pid) == 0, "fork: the child failed");
    /* The child's copy is closed: the connection must still be whole. */
    char c = 0;
    send_all(fd, "x", 1);
    recv_exact(fd, &c, 1);
    CHECK(c == 'y', "fork: after the child closed: reply 0x%02x, want 'y'", (unsigned char)c);
    SYS(close(fd));
    sync_wait("fork-done");
    ct_log("fork ok");
}

static void peer_fork(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 4);
    sync_signal("fork-ready");
    int fd = accept_timeout(l, 20000);
    SYS(close(l));
    static unsigned char buf[2 * FORK_HALF];
    recv_exact(fd, buf, sizeof buf);
    int seen[2] = {0, 0};
    for (size_t i = 0; i < sizeof buf; i++) {
        int w = buf[i] >> 7, v = buf[i] & 127;
        CHECK(v == seen[w] % 128, "fork: writer %d's byte %d is %d, want %d (at %zu)", w,
              seen[w], v, seen[w] % 128, i);
        seen[w]++;
    }
    CHECK(seen[0] == FORK_HALF && seen[1] == FORK_HALF,
          "fork: %d bytes from the child, %d from the parent, want %d each", seen[0], seen[1],
          FORK_HALF);
    char reply[FORK_REPLY];
    memset(reply, 'R', sizeof reply);
    send_all(fd, reply, sizeof reply);
    /* The child closes its copy and exits before the parent sends 'x':
     * an EOF here means the child's close ended the connection. */
    char c = 0;
    int ev = wait_fd(fd, POLLIN, timeout_ms());
    CHECK(ev & POLLIN, "fork: nothing after the reply");
    ssize_t n = recv(fd, &c, 1, 0);
    if (n == 0)
        FAIL("fork: EOF while the parent still holds the connection (the child's close ended it)");
    CHECK(n == 1 && c == 'x', "fork: recv %zd 0x%02x (%s), want 'x'", n, (unsigned char)c,
          n < 0 ? strerror(errno) : "");
    send_all(fd, "y", 1);
    expect_eof(fd, 10000);
    SYS(close(fd));
    sync_signal("fork-done");
}

/* ---- exec: inherited across execve, or not with CLOEXEC -------------- */

/* argv: exec-helper FD LPORT RPORT CLOEXEC_FD CLOEXEC_LPORT */
static int exec_helper(int argc, char **argv)
{
    ct_name = "shared";
    ct_role = "exec-helper";
    if (argc != 7) {
        fprintf(stderr, "usage: shared exec-helper FD LPORT RPORT CLOEXEC_FD CLOEXEC_LPORT\n");
        return 2;
    }
    alarm((unsigned)(timeout_ms() / 1000));
    int fd = atoi(argv[2]), lport = atoi(argv[3]), rport = atoi(argv[4]);
    int cfd = atoi(argv[5]), clport = atoi(argv[6]);

    CHECK(fcntl(fd, F_GETFD) >= 0, "inherited fd %d is not open after exec: %s", fd,
          strerror(errno));
    check_issock(fd, AF_INET, SOCK_STREAM, IPPROTO_TCP, "exec: inherited socket");
    check_inet_ends(fd, lport, rport, "exec: inherited socket");
    ping(fd, "exec: inherited socket");

    /* The SOCK_CLOEXEC socket must be gone. Its number may have been
     * reused since (by the shim at load): only a socket that is still
     * that connection counts. */
    if (fcntl(cfd, F_GETFD) >= 0) {
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        if (getsockname(cfd, (struct sockaddr *)&me, &ml) == 0 &&
            (me.ss_family == AF_INET || me.ss_family == AF_INET6))
            CHECK(!(is_subject_addr((struct sockaddr *)&me) &&
                    sa_port((struct sockaddr *)&me) == clport),
                  "exec: the SOCK_CLOEXEC socket (fd %d, %s) survived exec", cfd,
                  addrstr((struct sockaddr *)&me));
    }
    ct_log("exec helper ok");
    return 0;
}

/* argv: scm-helper UNIXFD RPORT: receives a socket on UNIXFD, uses it. */
static int recv_fd(int ufd);
static void scm_use(int fd, int rport, const char *who);

static int scm_helper(int argc, char **argv)
{
    ct_name = "shared";
    ct_role = "scm-helper";
    if (argc != 4) {
        fprintf(stderr, "usage: shared scm-helper UNIXFD RPORT\n");
        return 2;
    }
    alarm((unsigned)(timeout_ms() / 1000));
    int ufd = atoi(argv[2]);
    int fd = recv_fd(ufd);
    scm_use(fd, atoi(argv[3]), "scm: exec'd receiver");
    SYS(close(fd));
    SYS(close(ufd));
    ct_log("scm helper ok");
    return 0;
}

static void subject_exec(void)
{
    sync_wait("exec-ready");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(1));
    CHECK((SYS(fcntl(a, F_GETFD)) & FD_CLOEXEC) == 0, "exec: plain socket is FD_CLOEXEC");
    int b = SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(1));
    SYS(connect(b, (struct sockaddr *)&ss, sl));
    check_ends(b);
    CHECK(SYS(fcntl(b, F_GETFD)) & FD_CLOEXEC, "exec: SOCK_CLOEXEC not reported by F_GETFD");
    ping(a, "exec: before exec");
    ping(b, "exec: CLOEXEC socket before exec");

    char sfd[16], slp[16], srp[16], scfd[16], sclp[16];
    snprintf(sfd, sizeof sfd, "%d", a);
    snprintf(slp, sizeof slp, "%d", local_port(a));
    snprintf(srp, sizeof srp, "%d", ct_port(1));
    snprintf(scfd, sizeof scfd, "%d", b);
    snprintf(sclp, sizeof sclp, "%d", local_port(b));
    pid_t pid = fork_child();
    if (pid == 0) {
        execl(self_exe, "shared", "exec-helper", sfd, slp, srp, scfd, sclp, (char *)NULL);
        FAIL("execl %s: %s", self_exe, strerror(errno));
    }
    CHECK(wait_child(pid) == 0, "exec: the exec'd helper failed");
    /* The helper's exit closed its copy only. */
    ping(a, "exec: after the helper exited");
    ping(b, "exec: CLOEXEC socket after the helper exited");
    quit(a, "exec");
    quit(b, "exec");
    SYS(close(a));
    SYS(close(b));
    sync_wait("exec-done");
    ct_log("exec ok");
}

static void peer_exec(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(1), 4);
    sync_signal("exec-ready");
    cmdpeer_serve(l, 2);
    SYS(close(l));
    sync_signal("exec-done");
}

/* ---- scm: SCM_RIGHTS to a forked child and to an exec'd process ------ */

static void send_fd(int ufd, int fd)
{
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    CHECK(SYS(sendmsg(ufd, &m, 0)) == 1, "sendmsg SCM_RIGHTS: short");
}

static int recv_fd(int ufd)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    CHECK(wait_fd(ufd, POLLIN, timeout_ms()) & POLLIN, "scm: nothing to receive");
    ssize_t n = SYS(recvmsg(ufd, &m, MSG_CMSG_CLOEXEC));
    CHECK(n == 1 && byte == 'F', "scm: recvmsg %zd byte 0x%02x", n, (unsigned char)byte);
    CHECK(!(m.msg_flags & MSG_CTRUNC), "scm: control data truncated");
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        FAIL("scm: no SCM_RIGHTS with one fd in the message");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    CHECK(SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC, "scm: MSG_CMSG_CLOEXEC not applied");
    return fd;
}

/* The received socket is this connection and nothing else: names, type,
 * I/O, and the peer's close seen as EOF. */
static void scm_use(int fd, int rport, const char *who)
{
    check_issock(fd, AF_INET, SOCK_STREAM, IPPROTO_TCP, who);
    check_inet_ends(fd, 0, rport, who);
    ping(fd, who);
    quit(fd, who);
}

static void subject_scm(void)
{
    sync_wait("scm-ready");
    int sp[2];
    /* To a forked child, which forks before the socket exists. */
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    pid_t pid = fork_child();
    if (pid == 0) {
        SYS(close(sp[0]));
        int fd = recv_fd(sp[1]);
        scm_use(fd, ct_port(2), "scm: forked receiver");
        SYS(close(fd));
        _exit(0);
    }
    SYS(close(sp[1]));
    int fd = tcp_connect(AF_INET, ct_peer(), ct_port(2));
    ping(fd, "scm: sender before sending");
    send_fd(sp[0], fd);
    SYS(close(fd)); /* the child's copy is the only one now */
    CHECK(wait_child(pid) == 0, "scm: the forked receiver failed");
    SYS(close(sp[0]));

    /* To an exec'd process, which has no socket of its own yet. */
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    SYS(fcntl(sp[0], F_SETFD, FD_CLOEXEC));
    char sfd[16], srp[16];
    snprintf(sfd, sizeof sfd, "%d", sp[1]);
    snprintf(srp, sizeof srp, "%d", ct_port(2));
    pid = fork_child();
    if (pid == 0) {
        execl(self_exe, "shared", "scm-helper", sfd, srp, (char *)NULL);
        FAIL("execl %s: %s", self_exe, strerror(errno));
    }
    SYS(close(sp[1]));
    fd = tcp_connect(AF_INET, ct_peer(), ct_port(2));
    ping(fd, "scm: sender before sending (exec)");
    send_fd(sp[0], fd);
    SYS(close(fd));
    CHECK(wait_child(pid) == 0, "scm: the exec'd receiver failed");
    SYS(close(sp[0]));
    sync_wait("scm-done");
    ct_log("scm ok");
}

static void peer_scm(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(2), 4);
    sync_signal("scm-ready");
    cmdpeer_serve(l, 2);
    SYS(close(l));
    sync_signal("scm-done");
}

/* ---- stat: fstat and the socket's kind ------------------------------- */

static void subject_stat(void)
{
    sync_wait("stat-ready");
    int t = SYS(socket(AF_INET, SOCK_STREAM, 0));
    check_issock(t, AF_INET, SOCK_STREAM, IPPROTO_TCP, "stat: new TCP socket");
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(3));
    SYS(connect(t, (struct sockaddr *)&ss, sl));
    check_issock(t, AF_INET, SOCK_STREAM, IPPROTO_TCP, "stat: connected TCP socket");
    ping(t, "stat: TCP");

    int u = SYS(socket(AF_INET, SOCK_DGRAM, 0));
    check_issock(u, AF_INET, SOCK_DGRAM, IPPROTO_UDP, "stat: UDP socket");
    int t6 = SYS(socket(AF_INET6, SOCK_STREAM, 0));
    check_issock(t6, AF_INET6, SOCK_STREAM, IPPROTO_TCP, "stat: TCP v6 socket");
    int u6 = SYS(socket(AF_INET6, SOCK_DGRAM, 0));
    check_issock(u6, AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "stat: UDP v6 socket");
    /* A listener too. */
    int l = tcp_listen(AF_INET, ct_addr(), 0, 4);
    check_issock(l, AF_INET, SOCK_STREAM, IPPROTO_TCP, "stat: listener");
    /* Still the same after dup. */
    int d = SYS(dup(t));
    check_issock(d, AF_INET, SOCK_STREAM, IPPROTO_TCP, "stat: dup of TCP socket");
    ping(d, "stat: dup of TCP socket");
    SYS(close(d));
    quit(t, "stat");
    SYS(close(t));
    SYS(close(u));
    SYS(close(t6));
    SYS(close(u6));
    SYS(close(l));
    sync_wait("stat-done");
    ct_log("stat ok");
}

static void peer_stat(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(3), 4);
    sync_signal("stat-ready");
    cmdpeer_serve(l, 1);
    SYS(close(l));
    sync_signal("stat-done");
}

/* ---- accept: two processes on one listener --------------------------- */

#define ACC_EACH 10
#define ACC_TOTAL (2 * ACC_EACH)

/* Accepts ACC_EACH connections; on each reads the peer's 4-byte number
 * and answers it with this process's pid. Writes the peers' ports to
 * `ports`. */
static void accept_serve(int l, int *ports, const char *who)
{
    for (int i = 0; i < ACC_EACH; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        int c;
        do
            c = accept(l, (struct sockaddr *)&from, &fl);
        while (c < 0 && errno == EINTR);
        if (c < 0)
            FAIL("accept: %s: accept %d: %s", who, i, strerror(errno));
        CHECK(fl == sizeof(struct sockaddr_in) && from.ss_family == AF_INET,
              "accept: %s: peer family %d len %u", who, from.ss_family, fl);
        CHECK(is_peer_addr((struct sockaddr *)&from), "accept: %s: peer %s is not the peer's", who,
              addrstr((struct sockaddr *)&from));
        check_ends(c);
        check_transport(c, "accept: accepted connection");
        ports[i] = sa_port((struct sockaddr *)&from);
        uint32_t num, reply[2];
        recv_exact(c, &num, sizeof num);
        reply[0] = num;
        reply[1] = (uint32_t)getpid();
        send_all(c, reply, sizeof reply);
        expect_eof(c, 10000);
        SYS(close(c));
    }
}

static void subject_accept(void)
{
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(4), ACC_TOTAL + 4);
    int p[2];
    SYS(pipe(p));
    pid_t pid = fork_child();
    if (pid == 0) {
        SYS(close(p[0]));
        int ports[ACC_EACH];
        accept_serve(l, ports, "child");
        CHECK(write(p[1], ports, sizeof ports) == (ssize_t)sizeof ports, "accept: pipe write");
        _exit(0);
    }
    SYS(close(p[1]));
    sync_signal("accept-ready");
    int ports[ACC_TOTAL];
    accept_serve(l, ports, "parent");
    /* Each process stops after ten, so neither can take the other's. */
    size_t got = 0;
    while (got < sizeof ports / 2) {
        ssize_t n = read(p[0], (char *)(ports + ACC_EACH) + got, sizeof ports / 2 - got);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "accept: the child's ports: read %zd after %zu bytes", n, got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(wait_child(pid) == 0, "accept: the child failed");
    SYS(close(p[0]));
    for (int i = 0; i < ACC_TOTAL; i++)
        for (int j = i + 1; j < ACC_TOTAL; j++)
            CHECK(ports[i] != ports[j], "accept: peer port %d accepted twice", ports[i]);
    SYS(close(l));
    sync_wait("accept-done");
    ct_log("accept ok");
}

static void peer_accept(void)
{
    sync_wait("accept-ready");
    int fds[ACC_TOTAL];
    for (int i = 0; i < ACC_TOTAL; i++)
        fds[i] = tcp_connect(AF_INET, ct_addr(), ct_port(4));
    for (uint32_t i = 0; i < ACC_TOTAL; i++)
        send_all(fds[i], &i, sizeof i);
    /* Answers in any order: a process answers the connection it accepted,
     * whichever that was. */
    uint32_t pids[2] = {0, 0};
    int count[2] = {0, 0};
    int done[ACC_TOTAL] = {0};
    for (int left = ACC_TOTAL; left > 0;) {
        struct pollfd pf[ACC_TOTAL];
        for (int i = 0; i < ACC_TOTAL; i++)
            pf[i] = (struct pollfd){.fd = done[i] ? -1 : fds[i], .events = POLLIN};
        int n = poll(pf, ACC_TOTAL, timeout_ms());
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "accept: %d connections never answered", left);
        if (n <= 0)
            break;
        for (uint32_t i = 0; i < ACC_TOTAL; i++) {
            if (done[i] || !pf[i].revents)
                continue;
            uint32_t reply[2];
            recv_exact(fds[i], reply, sizeof reply);
            CHECK(reply[0] == i, "accept: connection %u answered as %u", i, reply[0]);
            int k;
            for (k = 0; k < 2; k++)
                if (pids[k] == reply[1] || pids[k] == 0)
                    break;
            if (k == 2)
                FAIL("accept: a third process (pid %u) served connection %u", reply[1], i);
            pids[k] = reply[1];
            count[k]++;
            SYS(shutdown(fds[i], SHUT_WR));
            expect_eof(fds[i], 10000);
            SYS(close(fds[i]));
            done[i] = 1;
            left--;
        }
    }
    CHECK(count[0] == ACC_EACH && count[1] == ACC_EACH,
          "accept: pid %u served %d, pid %u served %d; want %d each", pids[0], count[0], pids[1],
          count[1], ACC_EACH);
    sync_signal("accept-done");
}

/* ---- refuse: ECONNREFUSED from a closed port ------------------------- */

static void refuse_nb(int family, const char *host)
{
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, family, host, ct_port(5));
    int fd = SYS(socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), EINPROGRESS);
    int ev = wait_fd(fd, POLLOUT, timeout_ms());
    CHECK(ev & POLLOUT, "refuse %s: poll revents 0x%x, want POLLOUT", host, ev);
    int err = -1;
    socklen_t len = sizeof err;
    SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
    CHECK(len == sizeof err && err == ECONNREFUSED, "refuse %s: SO_ERROR %s, want ECONNREFUSED",
          host, errno_name(err));
    err = -1;
    SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
    CHECK(err == 0, "refuse %s: SO_ERROR not cleared: %s", host, errno_name(err));
    SYS(close(fd));
}

static void refuse_blocking(int family, const char *host)
{
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, family, host, ct_port(5));
    int fd = SYS(socket(family, SOCK_STREAM, 0));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), ECONNREFUSED);
    SYS(close(fd));
}

static void subject_refuse(void)
{
    sync_wait("refuse-ready");
    refuse_nb(AF_INET, ct_peer());
    refuse_blocking(AF_INET, ct_peer());
    refuse_nb(AF_INET6, ct_peer6());
    refuse_blocking(AF_INET6, ct_peer6());
    /* The same port, listened on now, connects: the refusal was the port. */
    sync_signal("refuse-checked");
    sync_wait("refuse-listening");
    int fd = tcp_connect(AF_INET, ct_peer(), ct_port(5));
    ping(fd, "refuse: the port once listened on");
    quit(fd, "refuse");
    SYS(close(fd));
    sync_wait("refuse-done");
    ct_log("refuse ok");
}

static void peer_refuse(void)
{
    sync_signal("refuse-ready");
    sync_wait("refuse-checked");
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(5), 4);
    sync_signal("refuse-listening");
    cmdpeer_serve(l, 1);
    SYS(close(l));
    sync_signal("refuse-done");
}

/* pollerr: what poll says of a refused non-blocking connect besides
 * POLLOUT. Linux: POLLOUT|POLLERR|POLLHUP (nb_connect checks the same of
 * the in-process stack); a program that watches for POLLERR or POLLHUP to
 * notice the failure depends on it. */
static void subject_pollerr(void)
{
    sync_wait("pollerr-ready");
    const int fams[2] = {AF_INET, AF_INET6};
    const char *hosts[2] = {ct_peer(), ct_peer6()};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = mkaddr(&ss, fams[i], hosts[i], ct_port(5));
        int fd = SYS(socket(fams[i], SOCK_STREAM | SOCK_NONBLOCK, 0));
        ERR(connect(fd, (struct sockaddr *)&ss, sl), EINPROGRESS);
        int ev = wait_fd(fd, POLLOUT, timeout_ms());
        CHECK((ev & (POLLOUT | POLLERR | POLLHUP)) == (POLLOUT | POLLERR | POLLHUP),
              "pollerr %s: refused connect: poll revents 0x%x, want POLLOUT|POLLERR|POLLHUP (0x%x)",
              hosts[i], ev, POLLOUT | POLLERR | POLLHUP);
        int err = -1;
        socklen_t len = sizeof err;
        SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
        CHECK(err == ECONNREFUSED, "pollerr %s: SO_ERROR %s, want ECONNREFUSED", hosts[i],
              errno_name(err));
        SYS(close(fd));
    }
    ct_log("pollerr ok");
}

static void peer_pollerr(void)
{
    /* Nothing listens on port 5. */
    sync_signal("pollerr-ready");
}

/* ---- udp: unconnected and connected, v4 and v6 ----------------------- */

/* The echo's reply: the sender's port as the peer saw it (2 bytes, network
 * order) and the datagram. */
static const int udp_sizes[] = {1, 100, 1200, 1472, 4000, 8000};
#define UDP_N (int)(sizeof udp_sizes / sizeof udp_sizes[0])
#define UDP_ROUNDS 3

static void udp_fill(unsigned char *buf, int size, int seed)
{
    uint32_t x = 2166136261u ^ (uint32_t)seed;
    for (int i = 0; i < size; i++) {
        x = x * 16777619u + 12345u;
        buf[i] = (unsigned char)(x >> 24);
    }
}

static int udp_recv_wait(int fd, void *buf, size_t len, struct sockaddr_storage *from,
                         socklen_t *fl, const char *what)
{
    CHECK(wait_fd(fd, POLLIN, timeout_ms()) & POLLIN, "%s: no datagram", what);
    ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)from, fl);
    if (n < 0)
        FAIL("%s: recvfrom: %s", what, strerror(errno));
    return (int)n;
}

/* One echo exchange; `connected` uses send/recv. */
static void udp_round(int fd, int connected, const struct sockaddr *to, socklen_t tl, int size,
                      int seed, const char *what)
{
    static unsigned char out[8000], in[8100];
    udp_fill(out, size, seed);
    ssize_t n = connected ? send(fd, out, (size_t)size, 0)
                          : sendto(fd, out, (size_t)size, 0, to, tl);
    if (n != size)
        FAIL("%s: send of %d bytes: %zd (%s)", what, size, n, n < 0 ? strerror(errno) : "short");
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    memset(&from, 0, sizeof from);
    int got = udp_recv_wait(fd, in, sizeof in, &from, &fl, what);
    CHECK(got == size + 2, "%s: reply of %d bytes, want %d", what, got, size + 2);
    CHECK(fl == tl && from.ss_family == to->sa_family, "%s: reply from family %d len %u", what,
          from.ss_family, fl);
    CHECK(is_peer_addr((struct sockaddr *)&from) &&
              sa_port((struct sockaddr *)&from) == sa_port(to),
          "%s: reply from %s, want %s", what, addrstr((struct sockaddr *)&from), addrstr(to));
    int seen_port = (in[0] << 8) | in[1];
    int my_port = local_port(fd);
    CHECK(seen_port == my_port, "%s: the peer saw port %d, getsockname says %d", what, seen_port,
          my_port);
    CHECK(got < 2 || memcmp(in + 2, out, (size_t)size) == 0, "%s: echo of %d bytes differs",
          what, size);
}

static void udp_case(int family, const char *host, int port, int connected, const char *what)
{
    struct sockaddr_storage to;
    socklen_t tl = mkaddr(&to, family, host, port);
    int fd = SYS(socket(family, SOCK_DGRAM, 0));
    check_transport(fd, what);
    if (connected) {
        SYS(connect(fd, (struct sockaddr *)&to, tl));
        struct sockaddr_storage pn;
        socklen_t pl = sizeof pn;
        SYS(getpeername(fd, (struct sockaddr *)&pn, &pl));
        CHECK(pl == tl && is_peer_addr((struct sockaddr *)&pn) &&
                  sa_port((struct sockaddr *)&pn) == port,
              "%s: getpeername %s", what, addrstr((struct sockaddr *)&pn));
    }
    for (int r = 0; r < UDP_ROUNDS; r++)
        for (int i = 0; i < UDP_N; i++)
            udp_round(fd, connected, (struct sockaddr *)&to, tl, udp_sizes[i],
                      port * 1000 + r * 100 + i, what);
    if (connected)
        check_ends(fd);
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    SYS(getsockname(fd, (struct sockaddr *)&me, &ml));
    CHECK(me.ss_family == family, "%s: getsockname family %d", what, me.ss_family);
    SYS(close(fd));
}

static void subject_udp(void)
{
    sync_wait("udp-ready");
    udp_case(AF_INET, ct_peer(), ct_port(6), 0, "udp v4 sendto");
    udp_case(AF_INET, ct_peer(), ct_port(7), 1, "udp v4 connected");
    udp_case(AF_INET6, ct_peer6(), ct_port(8), 0, "udp v6 sendto");
    udp_case(AF_INET6, ct_peer6(), ct_port(8), 1, "udp v6 connected");
    /* A bound socket: the peer answers to the port we chose. */
    int fd = udp_bind(AF_INET, ct_addr(), ct_port(9));
    struct sockaddr_storage to;
    socklen_t tl = mkaddr(&to, AF_INET, ct_peer(), ct_port(6));
    udp_round(fd, 0, (struct sockaddr *)&to, tl, 500, 7, "udp v4 bound");
    CHECK(local_port(fd) == ct_port(9), "udp bound: port %d", local_port(fd));
    SYS(close(fd));
    sync_signal("udp-finished");
    sync_wait("udp-done");
    ct_log("udp ok");
}

struct udp_echo_arg {
    int fd;
    int count; /* datagrams echoed */
};

static void *udp_echo(void *p)
{
    struct udp_echo_arg *a = p;
    static __thread unsigned char buf[8100];
    for (;;) {
        int ev = wait_fd(a->fd, POLLIN, 200);
        if (!ev) {
            if (sync_exists("udp-finished"))
                break;
            continue;
        }
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(a->fd, buf + 2, sizeof buf - 2, 0, (struct sockaddr *)&from, &fl);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            FAIL("udp echo: recvfrom: %s", strerror(errno));
        CHECK(is_subject_addr((struct sockaddr *)&from), "udp echo: datagram from %s",
              addrstr((struct sockaddr *)&from));
        int port = sa_port((struct sockaddr *)&from);
        buf[0] = (unsigned char)(port >> 8);
        buf[1] = (unsigned char)port;
        ssize_t m = sendto(a->fd, buf, (size_t)n + 2, 0, (struct sockaddr *)&from, fl);
        CHECK(m == n + 2, "udp echo: sendto %zd: %s", m, m < 0 ? strerror(errno) : "short");
        a->count++;
    }
    return NULL;
}

static void peer_udp(void)
{
    struct udp_echo_arg a[3] = {
        {udp_bind(AF_INET, ct_peer(), ct_port(6)), 0},
        {udp_bind(AF_INET, ct_peer(), ct_port(7)), 0},
        {udp_bind(AF_INET6, ct_peer6(), ct_port(8)), 0},
    };
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&th[i], NULL, udp_echo, &a[i]) == 0, "pthread_create");
    sync_signal("udp-ready");
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        SYS(close(a[i].fd));
    }
    int per = UDP_ROUNDS * UDP_N;
    CHECK(a[0].count == per + 1 && a[1].count == per && a[2].count == 2 * per,
          "udp: echoed %d/%d/%d datagrams, want %d/%d/%d", a[0].count, a[1].count, a[2].count,
          per + 1, per, 2 * per);
    sync_signal("udp-done");
}

/* ---- dispatch --------------------------------------------------------- */

static const struct {
    const char *name;
    void (*subject)(void);
    void (*peer)(void);
} subtests[] = {
    {"fork", subject_fork, peer_fork},       {"exec", subject_exec, peer_exec},
    {"scm", subject_scm, peer_scm},          {"stat", subject_stat, peer_stat},
    {"accept", subject_accept, peer_accept}, {"refuse", subject_refuse, peer_refuse},
    {"pollerr", subject_pollerr, peer_pollerr}, {"udp", subject_udp, peer_udp},
};

static void subject(void)
{
    for (size_t i = 0; i < sizeof subtests / sizeof subtests[0]; i++)
        if (want(subtests[i].name))
            subtests[i].subject();
}

static void peer(void)
{
    for (size_t i = 0; i < sizeof subtests / sizeof subtests[0]; i++)
        if (want(subtests[i].name))
            subtests[i].peer();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "exec-helper") == 0)
        return exec_helper(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "scm-helper") == 0)
        return scm_helper(argc, argv);
    return ct_main(argc, argv, "shared", subject, peer);
}
