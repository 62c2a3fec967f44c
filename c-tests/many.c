/* 500 concurrent connections in one thread, both ways. The subject opens
 * 500 non-blocking connections, drives them with poll until every one is
 * established, then sends a message on each and checks each echo; the
 * peer's epoll echo server checks it held 500 at once. Then the subject
 * is the epoll-driven echo server and the peer opens 500 connections. */
#include "common.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#define N 500
#define MSG 100

static void raise_nofile(void)
{
    struct rlimit rl;
    SYS(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        SYS(setrlimit(RLIMIT_NOFILE, &rl));
    }
}

static void message(int i, char *buf)
{
    snprintf(buf, MSG, "connection %d", i);
    for (int j = (int)strlen(buf); j < MSG; j++)
        buf[j] = (char)('a' + (i + j) % 26);
}

/* Epoll echo server: serves until `total` connections have come and gone;
 * fails unless `total` were open at once. */
static void echo_server(int l, int total)
{
    int ep = SYS(epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    set_nonblock(l, 1);
    int accepted = 0, open = 0, max_open = 0, closed = 0;
    while (closed < total) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 20000);
        CHECK(n > 0, "echo server: idle for 20 s (accepted %d, closed %d)", accepted, closed);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (;;) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0 && errno == EAGAIN)
                        break;
                    CHECK(c >= 0, "accept4: %s", strerror(errno));
                    check_ends(c);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce));
                    accepted++;
                    if (++open > max_open)
                        max_open = open;
                }
                continue;
            }
            char buf[4096];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            CHECK(r >= 0, "echo server recv: %s", strerror(errno));
            if (r == 0) {
                SYS(close(fd));
                open--;
                closed++;
                continue;
            }
            send_all(fd, buf, (size_t)r);
        }
    }
    CHECK(accepted == total && max_open == total, "echo server: %d accepted, at most %d at once, want %d",
          accepted, max_open, total);
    SYS(close(ep));
}

/* Opens n non-blocking connections, completes them all with poll, then
 * exchanges one message on each, all in flight together. */
static void clients(int fam, const char *host, int port, int n)
{
    static struct pollfd p[N];
    static size_t got[N];
    static char in[N][MSG];
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, fam, host, port);
    for (int i = 0; i < n; i++) {
        p[i].fd = SYS(socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0));
        p[i].events = POLLOUT;
        int r = connect(p[i].fd, (struct sockaddr *)&ss, sl);
        CHECK(r == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
        got[i] = 0;
    }
    int pending = n;
    int64_t end = now_ms() + 20000;
    while (pending > 0) {
        CHECK(now_ms() < end, "%d of %d connections still pending after 20 s", pending, n);
        int r = poll(p, (nfds_t)n, 1000);
        CHECK(r >= 0, "poll: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (!p[i].revents || p[i].events != POLLOUT)
                continue;
            int err = 0;
            socklen_t el = sizeof err;
            SYS(getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &el));
            CHECK(err == 0, "connection %d failed: %s", i, errno_name(err));
            check_ends(p[i].fd);
            p[i].events = 0;
            pending--;
        }
    }
    char msg[MSG];
    for (int i = 0; i < n; i++) {
        message(i, msg);
        send_all(p[i].fd, msg, MSG);
        p[i].events = POLLIN;
    }
    pending = n;
    end = now_ms() + 20000;
    while (pending > 0) {
        CHECK(now_ms() < end, "%d of %d echoes missing after 20 s", pending, n);
        int r = poll(p, (nfds_t)n, 1000);
        CHECK(r >= 0, "poll: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            ssize_t k = recv(p[i].fd, in[i] + got[i], MSG - got[i], 0);
            CHECK(k > 0, "echo %d: %s", i, k < 0 ? strerror(errno) : "EOF");
            got[i] += (size_t)k;
            if (got[i] == MSG) {
                message(i, msg);
                CHECK(memcmp(in[i], msg, MSG) == 0, "echo %d differs", i);
                p[i].events = 0;
                pending--;
            }
        }
    }
    for (int i = 0; i < n; i++)
        SYS(close(p[i].fd));
}

static void subject(void)
{
    raise_nofile();
    sync_wait("peer-listening");
    clients(AF_INET, ct_peer(), ct_port(0), N);
    int l = tcp_listen(AF_INET6, ct_addr6(), ct_port(5), 1024);
    sync_signal("subject-listening");
    echo_server(l, N);
    SYS(close(l));
    ct_log("ok");
}

static void peer_fn(void)
{
    raise_nofile();
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 1024);
    sync_signal("peer-listening");
    echo_server(l, N);
    sync_wait("subject-listening");
    clients(AF_INET6, ct_addr6(), ct_port(5), N);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "many", subject, peer_fn); }
