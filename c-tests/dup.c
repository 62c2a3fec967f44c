/* dup, dup2, dup3, F_DUPFD(_CLOEXEC) and close: a connection lives until
 * its last fd closes; O_NONBLOCK is shared between duplicates; FD_CLOEXEC
 * is per fd; dup2 over a live socket closes that socket's connection; a
 * number freed by close and reused for a file or a pipe is that file, not
 * a stale socket. The peer records what each connection carried until
 * EOF. */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Port 0: the peer's recording server. */

static void subject(void)
{
    char c;
    sync_wait("peer-listening");

    /* A: the connection survives closing all but the last duplicate. */
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(a, "A:one|", 6);
    int d = SYS(dup(a));
    CHECK(d != a, "dup returned the same number");
    CHECK(!(SYS(fcntl(d, F_GETFD)) & FD_CLOEXEC), "dup set FD_CLOEXEC");
    SYS(fcntl(d, F_SETFL, SYS(fcntl(d, F_GETFL)) | O_NONBLOCK));
    CHECK(SYS(fcntl(a, F_GETFL)) & O_NONBLOCK, "O_NONBLOCK set on a dup is not seen on the original");
    ERR(recv(a, &c, 1, 0), EAGAIN);
    SYS(fcntl(a, F_SETFL, SYS(fcntl(a, F_GETFL)) & ~O_NONBLOCK));
    CHECK(!(SYS(fcntl(d, F_GETFL)) & O_NONBLOCK), "clearing O_NONBLOCK not shared");
    SYS(close(a));
    send_all(d, "two|", 4);
    int e = SYS(dup2(d, 100));
    CHECK(e == 100, "dup2 returned %d", e);
    CHECK(SYS(dup2(e, e)) == e, "dup2 onto itself");
    int f = SYS(dup3(d, 101, O_CLOEXEC));
    CHECK(SYS(fcntl(f, F_GETFD)) & FD_CLOEXEC, "dup3 O_CLOEXEC not set");
    int g = SYS(fcntl(d, F_DUPFD_CLOEXEC, 200));
    CHECK(g >= 200 && (SYS(fcntl(g, F_GETFD)) & FD_CLOEXEC), "F_DUPFD_CLOEXEC gave %d", g);
    int h = SYS(fcntl(d, F_DUPFD, 300));
    CHECK(h >= 300 && !(SYS(fcntl(h, F_GETFD)) & FD_CLOEXEC), "F_DUPFD gave %d", h);
    SYS(close(d));
    SYS(close(f));
    send_all(g, "three|", 6);
    SYS(close(g));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getpeername(h, (struct sockaddr *)&ss, &sl));
    CHECK(sa_port((struct sockaddr *)&ss) == ct_port(0), "getpeername through F_DUPFD copy");
    SYS(close(h));
    send_all(e, "four|", 5);
    SYS(close(e));
    ERR(close(e), EBADF);
    sync_wait("eof-A");

    /* B and C: dup2(b, c) closes C's connection; c then carries B. */
    int b = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(b, "B:b|", 4);
    int cc = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(cc, "C:c|", 4);
    sync_wait("got-C");
    CHECK(SYS(dup2(b, cc)) == cc, "dup2");
    sync_wait("eof-C");
    send_all(cc, "via-c|", 6);
    SYS(close(b));
    send_all(cc, "still|", 6);
    SYS(close(cc));
    sync_wait("eof-B");

    /* D: a closed socket's number reused by a file and by a pipe. */
    int x = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(x, "D:", 2);
    SYS(close(x));
    int nul = SYS(open("/dev/null", O_RDWR));
    if (nul != x) {
        SYS(dup2(nul, x));
        SYS(close(nul));
    }
    CHECK(write(x, "zz", 2) == 2, "write to /dev/null at a reused number");
    CHECK(read(x, &c, 1) == 0, "read from /dev/null at a reused number");
    struct stat st;
    SYS(fstat(x, &st));
    CHECK(S_ISCHR(st.st_mode), "reused number is not /dev/null");
    int v;
    socklen_t vl = sizeof v;
    ERR(getsockopt(x, SOL_SOCKET, SO_TYPE, &v, &vl), ENOTSOCK);
    SYS(close(x));
    int y = tcp_connect(AF_INET6, ct_peer6(), ct_port(1));
    SYS(close(y));
    int p[2];
    SYS(pipe(p));
    int r = p[0], w = p[1];
    if (r != y && w != y) {
        SYS(dup2(r, y));
        SYS(close(r));
        r = y;
    }
    CHECK(write(w, "pp", 2) == 2, "pipe write at a reused number");
    char buf[2];
    CHECK(read(r, buf, 2) == 2 && memcmp(buf, "pp", 2) == 0, "pipe read at a reused number");
    SYS(close(r));
    SYS(close(w));
    sync_wait("eof-D");
    ct_log("ok");
}

struct rec {
    int fd;
    char data[256];
};

static void *record(void *arg)
{
    struct rec *r = arg;
    size_t len = 0;
    for (;;) {
        CHECK(wait_fd(r->fd, POLLIN, 20000), "recording: nothing for 20 s");
        ssize_t n = recv(r->fd, r->data + len, sizeof r->data - 1 - len, 0);
        if (n < 0)
            FAIL("recording: %s", strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
        r->data[len] = 0;
        if (strcmp(r->data, "C:c|") == 0)
            sync_signal("got-C");
    }
    char name[16];
    snprintf(name, sizeof name, "eof-%c", r->data[0] ? r->data[0] : '?');
    sync_signal(name);
    close(r->fd);
    return NULL;
}

static void peer_fn(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");
    static struct rec recs[5];
    pthread_t th[5];
    for (int i = 0; i < 5; i++) {
        recs[i].fd = accept_timeout(i == 4 ? l6 : l, 20000);
        pthread_create(&th[i], NULL, record, &recs[i]);
    }
    const char *want[5] = {"A:one|two|three|four|", "B:b|via-c|still|", "C:c|", "D:", ""};
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        CHECK(strcmp(recs[i].data, want[i]) == 0, "connection %d carried '%s', want '%s'", i, recs[i].data,
              want[i]);
    }
}

int main(int argc, char **argv) { return ct_main(argc, argv, "dup", subject, peer_fn); }
