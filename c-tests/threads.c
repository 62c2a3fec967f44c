/* Sockets under threads: eight threads each run their own connection
 * (a 2 MiB echo) at once; a thread blocked in accept() gets the
 * connection the peer makes later; a thread blocked in recv() is woken by
 * shutdown(SHUT_RDWR) from another thread (recv returns 0), and one
 * blocked in poll() is woken by data arriving. */
#include "common.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NT 8
#define EACH (2 << 20)

static void *echo_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = tcp_connect(id % 2 ? AF_INET6 : AF_INET, id % 2 ? ct_peer6() : ct_peer(), ct_port(id % 2));
    char *out = malloc(65536), *in = malloc(65536);
    CHECK(out && in, "malloc");
    for (size_t done = 0; done < EACH; done += 65536) {
        for (int i = 0; i < 65536; i++)
            out[i] = (char)(id * 31 + (int)(done >> 16) + i);
        send_all(fd, out, 65536);
        recv_exact(fd, in, 65536);
        CHECK(memcmp(in, out, 65536) == 0, "thread %d: echo differs at %zu", id, done);
    }
    SYS(shutdown(fd, SHUT_WR));
    expect_eof(fd, 5000);
    SYS(close(fd));
    free(out);
    free(in);
    return NULL;
}

static int listener;
static void *acceptor(void *arg)
{
    (void)arg;
    int c = SYS(accept(listener, NULL, NULL)); /* blocks until the peer comes */
    check_ends(c);
    send_all(c, "hi", 2);
    expect_eof(c, 5000);
    SYS(close(c));
    return NULL;
}

static volatile ssize_t blocked_result = -2;
static void *blocked_reader(void *arg)
{
    char c;
    blocked_result = recv((int)(intptr_t)arg, &c, 1, 0);
    return NULL;
}

static volatile int poll_result = -2;
static void *blocked_poller(void *arg)
{
    struct pollfd p = {.fd = (int)(intptr_t)arg, .events = POLLIN};
    poll_result = poll(&p, 1, 10000) == 1 && (p.revents & POLLIN);
    return NULL;
}

static void subject(void)
{
    sync_wait("peer-listening");
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        CHECK(pthread_create(&th[i], NULL, echo_client, (void *)(intptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);

    listener = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    pthread_t at;
    CHECK(pthread_create(&at, NULL, acceptor, NULL) == 0, "pthread_create");
    sleep_ms(200); /* let it block in accept */
    sync_signal("subject-listening");
    pthread_join(at, NULL);

    /* A reader blocked in recv, woken by shutdown from this thread. */
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(2));
    pthread_t rt;
    CHECK(pthread_create(&rt, NULL, blocked_reader, (void *)(intptr_t)a) == 0, "pthread_create");
    sleep_ms(200);
    CHECK(blocked_result == -2, "recv returned before anything was sent");
    int64_t t0 = now_ms();
    SYS(shutdown(a, SHUT_RDWR));
    pthread_join(rt, NULL);
    CHECK(blocked_result == 0, "recv woken by shutdown returned %zd, want 0", blocked_result);
    CHECK(now_ms() - t0 < 2000, "shutdown took %lld ms to wake recv", (long long)(now_ms() - t0));
    SYS(close(a));

    /* A poller woken by data the peer sends 300 ms later. */
    int b = tcp_connect(AF_INET, ct_peer(), ct_port(2));
    pthread_t pt;
    CHECK(pthread_create(&pt, NULL, blocked_poller, (void *)(intptr_t)b) == 0, "pthread_create");
    send_all(b, "s", 1); /* the peer answers after 300 ms */
    pthread_join(pt, NULL);
    CHECK(poll_result == 1, "poll in another thread was not woken by data");
    char c;
    recv_exact(b, &c, 1);
    SYS(close(b));
    SYS(close(listener));
    ct_log("ok");
}

struct conn {
    int fd;
};

static void *echo_server_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(65536);
    CHECK(buf, "malloc");
    for (;;) {
        CHECK(wait_fd(fd, POLLIN, 20000), "echo: idle 20 s");
        ssize_t n = SYS(recv(fd, buf, 65536, 0));
        if (n == 0)
            break;
        send_all(fd, buf, (size_t)n);
    }
    SYS(close(fd));
    free(buf);
    return NULL;
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 16);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 16);
    int l2 = tcp_listen(AF_INET, ct_peer(), ct_port(2), 4);
    sync_signal("peer-listening");
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        int c = accept_timeout(i % 2 ? l6 : l4, 20000);
        CHECK(pthread_create(&th[i], NULL, echo_server_conn, (void *)(intptr_t)c) == 0, "pthread_create");
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    sync_wait("subject-listening");
    int fd = tcp_connect(AF_INET, ct_addr(), ct_port(5));
    char buf[2];
    recv_exact(fd, buf, 2);
    CHECK(memcmp(buf, "hi", 2) == 0, "acceptor's greeting");
    SYS(close(fd));
    int a = accept_timeout(l2, 20000);
    expect_eof(a, 10000);
    SYS(close(a));
    int b = accept_timeout(l2, 20000);
    char c;
    recv_exact(b, &c, 1);
    sleep_ms(300);
    send_all(b, "x", 1);
    expect_eof(b, 10000);
    SYS(close(b));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "threads", subject, peer_fn); }
