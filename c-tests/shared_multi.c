/* Several independent programs at once (the shared stack: one daemon
 * serves them all; each on its own stack, the second found the TUN device
 * busy). The runner starts one peer and CT_INSTANCES subjects (default 1),
 * each with its own CT_ID (0, 1, ...), not forked from each other. Every
 * subject waits until all have started, opens ten connections, echoes
 * 20000 bytes of its own pattern on each and checks them, and holds all
 * ten open until every subject has its ten: the programs' connections
 * overlap for certain. The peer checks it echoed every byte.
 *
 * Port 0: the peer's echo listener. */
#include "common.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CONNS 10
#define BYTES 20000

static int instances(void)
{
    const char *v = getenv("CT_INSTANCES");
    int n = v ? atoi(v) : 1;
    return n > 0 ? n : 1;
}

static int my_id(void)
{
    const char *v = getenv("CT_ID");
    return v ? atoi(v) : 0;
}

static void fill(unsigned char *buf, int id, int conn)
{
    uint32_t x = 0x9e3779b9u * (uint32_t)(id * 100 + conn + 1);
    for (int i = 0; i < BYTES; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void wait_all(const char *what)
{
    char name[64];
    for (int i = 0; i < instances(); i++) {
        snprintf(name, sizeof name, "%s-%d", what, i);
        sync_wait(name);
    }
}

static void subject(void)
{
    char name[64];
    int id = my_id();
    sync_wait("peer-listening");
    snprintf(name, sizeof name, "started-%d", id);
    sync_signal(name);
    wait_all("started");

    int fds[CONNS];
    static unsigned char out[BYTES], in[BYTES];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = tcp_connect(AF_INET, ct_peer(), ct_port(0));
        check_transport(fds[c], "multi: connection");
        fill(out, id, c);
        send_all(fds[c], out, BYTES);
        recv_exact(fds[c], in, BYTES);
        CHECK(memcmp(in, out, BYTES) == 0, "instance %d connection %d: echo differs", id, c);
    }
    snprintf(name, sizeof name, "connected-%d", id);
    sync_signal(name);
    wait_all("connected");
    /* All programs hold their connections now: one more round on each. */
    for (int c = 0; c < CONNS; c++) {
        fill(out, id, c);
        send_all(fds[c], out + 1000, 1000);
        recv_exact(fds[c], in, 1000);
        CHECK(memcmp(in, out + 1000, 1000) == 0, "instance %d connection %d: 2nd echo differs",
              id, c);
        SYS(shutdown(fds[c], SHUT_WR));
        expect_eof(fds[c], 10000);
        SYS(close(fds[c]));
    }
    ct_log("instance %d ok", id);
}

static long echoed; /* bytes, under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    long total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            FAIL("echo: recv: %s", strerror(errno));
        if (n == 0)
            break;
        send_all(fd, buf, (size_t)n);
        total += n;
    }
    close(fd);
    pthread_mutex_lock(&lock);
    echoed += total;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void peer(void)
{
    int n = instances() * CONNS;
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), n + 4);
    sync_signal("peer-listening");
    pthread_t *th = calloc((size_t)n, sizeof *th);
    CHECK(th, "calloc");
    for (int i = 0; i < n; i++) {
        int c = accept_timeout(l, 20000);
        CHECK(pthread_create(&th[i], NULL, echo_conn, (void *)(intptr_t)c) == 0,
              "pthread_create");
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    free(th);
    SYS(close(l));
    long want = (long)n * (BYTES + 1000);
    CHECK(echoed == want, "echoed %ld bytes, want %ld", echoed, want);
}

int main(int argc, char **argv)
{
    return ct_main(argc, argv, "shared_multi", subject, peer);
}
