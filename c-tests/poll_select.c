/* poll, ppoll, select and pselect over a mix of kernel fds (a pipe) and
 * sockets: nothing ready (the timeout is honoured), one ready, both ready,
 * POLLOUT, a negative fd ignored, a closed fd giving POLLNVAL (and EBADF
 * from select), a socket at a high fd number, POLLHUP of a pipe, EOF and
 * POLLRDHUP of a socket, a listening socket, and poll with no fds. */
#include "cmdpeer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>

static void drain(int fd)
{
    char buf[256];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

static void subject(void)
{
    int p[2];
    char c;
    SYS(pipe(p));
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));

    /* poll: nothing ready, then the pipe, then both. */
    struct pollfd fds[3] = {{.fd = p[0], .events = POLLIN}, {.fd = a, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    int64_t t0 = now_ms();
    CHECK(poll(fds, 3, 150) == 0, "poll: something ready on idle fds");
    CHECK(now_ms() - t0 >= 130, "poll(150 ms) returned after %lld ms", (long long)(now_ms() - t0));
    SYS(write(p[1], "x", 1));
    int n = SYS(poll(fds, 3, 1000));
    CHECK(n == 1 && fds[0].revents == POLLIN && fds[1].revents == 0 && fds[2].revents == 0,
          "poll with the pipe ready: %d, revents %x %x %x", n, fds[0].revents, fds[1].revents, fds[2].revents);
    send_all(a, "d", 1);
    int64_t end = now_ms() + 5000;
    do {
        n = SYS(poll(fds, 3, 1000));
    } while (!(fds[1].revents & POLLIN) && now_ms() < end);
    CHECK(n == 2 && fds[0].revents == POLLIN && fds[1].revents == POLLIN, "poll with both ready: %d, revents %x %x", n,
          fds[0].revents, fds[1].revents);
    fds[1].events = POLLIN | POLLOUT;
    n = SYS(poll(&fds[1], 1, 0));
    CHECK(n == 1 && fds[1].revents == (POLLIN | POLLOUT), "POLLIN|POLLOUT: revents %x", fds[1].revents);

    /* ppoll and pselect, with a signal mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    struct timespec ts = {0, 100 * 1000000L};
    n = SYS(ppoll(fds, 2, &ts, &mask));
    CHECK(n == 2, "ppoll with both ready: %d", n);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(a, &r);
    FD_SET(a, &w);
    int maxfd = (p[0] > a ? p[0] : a) + 1;
    n = SYS(pselect(maxfd, &r, &w, NULL, &ts, &mask));
    CHECK(n == 3 && FD_ISSET(p[0], &r) && FD_ISSET(a, &r) && FD_ISSET(a, &w), "pselect: %d", n);
    SYS(read(p[0], &c, 1));
    drain(a);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(a, &r);
    struct timeval tv = {0, 150000};
    t0 = now_ms();
    CHECK(SYS(select(maxfd, &r, NULL, NULL, &tv)) == 0, "select: something ready on idle fds");
    CHECK(now_ms() - t0 >= 130, "select(150 ms) returned after %lld ms", (long long)(now_ms() - t0));
    CHECK(!FD_ISSET(p[0], &r) && !FD_ISSET(a, &r), "select left bits set on timeout");

    /* A socket at a high number (still below FD_SETSIZE). */
    int hi = SYS(dup2(a, 900));
    send_all(hi, "d", 1);
    FD_ZERO(&r);
    FD_SET(hi, &r);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    n = SYS(select(hi + 1, &r, NULL, NULL, &tv));
    CHECK(n == 1 && FD_ISSET(hi, &r), "select on fd 900: %d", n);
    drain(hi);
    SYS(close(hi));

    /* Closed fds: POLLNVAL, EBADF. */
    int dead = SYS(dup(a));
    SYS(close(dead));
    struct pollfd pd = {.fd = dead, .events = POLLIN};
    n = SYS(poll(&pd, 1, 0));
    CHECK(n == 1 && pd.revents == POLLNVAL, "poll on a closed fd: %d, revents %x", n, pd.revents);
    FD_ZERO(&r);
    FD_SET(dead, &r);
    tv.tv_sec = 0;
    ERR(select(dead + 1, &r, NULL, NULL, &tv), EBADF);

    /* No fds: a plain sleep. */
    t0 = now_ms();
    CHECK(poll(NULL, 0, 100) == 0, "poll with no fds");
    CHECK(now_ms() - t0 >= 90, "poll(NULL, 0, 100) returned after %lld ms", (long long)(now_ms() - t0));

    /* A listening socket beside the pipe. */
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    struct pollfd lp[2] = {{.fd = l, .events = POLLIN}, {.fd = p[0], .events = POLLIN}};
    CHECK(poll(lp, 2, 100) == 0, "idle listener polls ready");
    sync_signal("subject-listening");
    n = SYS(poll(lp, 2, 5000));
    CHECK(n == 1 && lp[0].revents == POLLIN, "listener: %d, revents %x", n, lp[0].revents);
    int s = SYS(accept(l, NULL, NULL));

    /* Hang-ups: the pipe's writer closes; the peer closes. */
    SYS(close(p[1]));
    send_all(a, "w", 1);
    struct pollfd hp[2] = {{.fd = p[0], .events = POLLIN}, {.fd = a, .events = POLLIN | POLLRDHUP}};
    end = now_ms() + 5000;
    do {
        n = SYS(poll(hp, 2, 1000));
    } while (!(hp[1].revents & POLLRDHUP) && now_ms() < end);
    CHECK(hp[0].revents == POLLHUP, "pipe with its writer closed: revents %x, want POLLHUP", hp[0].revents);
    CHECK(hp[1].revents == (POLLIN | POLLRDHUP), "socket after the peer's FIN: revents %x, want POLLIN|POLLRDHUP",
          hp[1].revents);
    CHECK(recv(a, &c, 1, 0) == 0, "EOF");
    SYS(close(a));
    expect_eof(s, 5000);
    SYS(close(s));
    SYS(close(l));
    SYS(close(p[0]));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    sync_signal("peer-listening");
    int a = accept_timeout(l, 20000);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cmdpeer_conn, (void *)(intptr_t)a) == 0, "pthread_create");
    sync_wait("subject-listening");
    int fd = tcp_connect(AF_INET, ct_addr(), ct_port(5));
    SYS(close(fd));
    pthread_join(t, NULL);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "poll_select", subject, peer_fn); }
