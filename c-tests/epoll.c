/* epoll with a mix of kernel fds (a pipe) and sockets: level-triggered,
 * edge-triggered, EPOLLONESHOT and re-arming, data.u64 returned as set,
 * EPOLL_CTL errors, EPOLLOUT, EPOLLRDHUP, EPOLLHUP|EPOLLERR on reset, a
 * listening socket, a closed fd leaving the set, timeouts, maxevents, and
 * an epoll fd itself polled. */
#include "cmdpeer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>

#define TAG_A 0x1111000000000001ULL
#define TAG_P 0x2222000000000002ULL

static int ep;

/* One epoll_wait (retried on EINTR). */
static int collect(struct epoll_event *evs, int max, int ms)
{
    for (;;) {
        int n = epoll_wait(ep, evs, max, ms);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
        return n;
    }
}

static uint32_t find(struct epoll_event *evs, int n, uint64_t tag)
{
    uint32_t ev = 0;
    for (int i = 0; i < n; i++)
        if (evs[i].data.u64 == tag)
            ev |= evs[i].events;
    return ev;
}

static void expect_none(int ms, const char *what)
{
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, ms);
    CHECK(n == 0, "%s: expected no events, got %d (first: data 0x%llx events 0x%x)", what, n,
          n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL, n > 0 ? evs[0].events : 0);
}

/* Waits until the event for tag shows up (alone or with others). */
static uint32_t wait_tag(uint64_t tag, int ms, const char *what)
{
    struct epoll_event evs[8];
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        int n = epoll_wait(ep, evs, 8, (int)(end - now_ms()));
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            CHECK(evs[i].data.u64 == tag, "%s: unexpected event data 0x%llx events 0x%x", what,
                  (unsigned long long)evs[i].data.u64, evs[i].events);
        }
        uint32_t e = find(evs, n, tag);
        if (e)
            return e;
    }
    FAIL("%s: no event for 0x%llx within %d ms", what, (unsigned long long)tag, ms);
}

static void ctl(int op, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event e = {.events = events, .data.u64 = tag};
    SYS(epoll_ctl(ep, op, fd, &e));
}

static void drain(int fd)
{
    char buf[4096];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

static void subject(void)
{
    struct epoll_event evs[8];
    int p[2];
    SYS(pipe2(p, O_NONBLOCK));
    ep = SYS(epoll_create1(EPOLL_CLOEXEC));
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    set_nonblock(a, 1);

    /* Level-triggered. */
    ctl(EPOLL_CTL_ADD, a, EPOLLIN, TAG_A);
    ctl(EPOLL_CTL_ADD, p[0], EPOLLIN, TAG_P);
    struct epoll_event dup_ev = {.events = EPOLLIN};
    ERR(epoll_ctl(ep, EPOLL_CTL_ADD, a, &dup_ev), EEXIST);
    expect_none(100, "idle");
    int64_t t0 = now_ms();
    expect_none(200, "timeout");
    CHECK(now_ms() - t0 >= 180, "epoll_wait(200 ms) returned after %lld ms", (long long)(now_ms() - t0));
    struct pollfd pe = {.fd = ep, .events = POLLIN};
    CHECK(poll(&pe, 1, 0) == 0, "idle epoll fd polls readable");
    SYS(write(p[1], "p", 1));
    CHECK(poll(&pe, 1, 2000) == 1 && (pe.revents & POLLIN), "epoll fd not readable with a ready pipe");
    int n = collect(evs, 8, 100);
    CHECK(n == 1 && evs[0].data.u64 == TAG_P && evs[0].events == EPOLLIN,
          "pipe: %d events, first data 0x%llx events 0x%x", n, (unsigned long long)evs[0].data.u64,
          evs[0].events);
    n = collect(evs, 8, 100);
    CHECK(n == 1 && evs[0].data.u64 == TAG_P, "level-triggered pipe not reported again");
    send_all(a, "d", 1);
    n = 0;
    int64_t end = now_ms() + 5000;
    while (!(find(evs, n, TAG_A)) && now_ms() < end)
        n = collect(evs, 8, 100);
    CHECK(find(evs, n, TAG_A) == EPOLLIN, "socket: events 0x%x, want EPOLLIN", find(evs, n, TAG_A));
    CHECK(find(evs, n, TAG_P) == EPOLLIN, "pipe missing beside the socket");
    CHECK(epoll_wait(ep, evs, 1, 0) == 1, "maxevents 1 did not return exactly one");
    char c;
    SYS(read(p[0], &c, 1));
    drain(a);
    expect_none(100, "drained");

    /* EPOLLOUT. */
    ctl(EPOLL_CTL_MOD, a, EPOLLIN | EPOLLOUT, TAG_A);
    n = collect(evs, 8, 1000);
    CHECK(n == 1 && evs[0].data.u64 == TAG_A && evs[0].events == EPOLLOUT,
          "EPOLLOUT: %d events, events 0x%x", n, n ? evs[0].events : 0);

    /* Edge-triggered: one event per arrival, none for data left unread. */
    ctl(EPOLL_CTL_MOD, a, EPOLLIN | EPOLLET, TAG_A + 1);
    ctl(EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, TAG_P + 1);
    send_all(a, "d", 1);
    CHECK(wait_tag(TAG_A + 1, 5000, "ET first") & EPOLLIN, "ET: no EPOLLIN");
    expect_none(200, "ET with unread data");
    send_all(a, "d", 1);
    CHECK(wait_tag(TAG_A + 1, 5000, "ET second") & EPOLLIN, "ET: no second EPOLLIN");
    expect_none(100, "ET after second");
    SYS(write(p[1], "p", 1));
    wait_tag(TAG_P + 1, 1000, "ET pipe");
    expect_none(100, "ET pipe unread");
    SYS(write(p[1], "p", 1));
    wait_tag(TAG_P + 1, 1000, "ET pipe again");
    char buf[16];
    CHECK(read(p[0], buf, sizeof buf) == 2, "pipe bytes");
    drain(a);

    /* One-shot: one event, then nothing until re-armed. */
    ctl(EPOLL_CTL_MOD, a, EPOLLIN | EPOLLONESHOT, TAG_A + 2);
    ctl(EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, TAG_P + 2);
    send_all(a, "d", 1);
    wait_tag(TAG_A + 2, 5000, "oneshot");
    send_all(a, "d", 1);
    expect_none(300, "oneshot disarmed");
    SYS(write(p[1], "p", 1));
    wait_tag(TAG_P + 2, 1000, "oneshot pipe");
    expect_none(100, "oneshot pipe disarmed");
    ctl(EPOLL_CTL_MOD, a, EPOLLIN | EPOLLONESHOT, TAG_A + 3);
    wait_tag(TAG_A + 3, 1000, "oneshot re-armed");
    expect_none(100, "oneshot re-armed, fired");
    SYS(read(p[0], buf, sizeof buf));
    drain(a);

    /* Removed fds report nothing. */
    SYS(epoll_ctl(ep, EPOLL_CTL_DEL, a, NULL));
    ERR(epoll_ctl(ep, EPOLL_CTL_DEL, a, NULL), ENOENT);
    ERR(epoll_ctl(ep, EPOLL_CTL_MOD, a, &dup_ev), ENOENT);
    ctl(EPOLL_CTL_MOD, p[0], EPOLLIN, TAG_P);
    send_all(a, "d", 1);
    sleep_ms(200);
    expect_none(100, "deleted socket");
    CHECK(wait_fd(a, POLLIN, 5000) & POLLIN, "deleted socket never got its byte");
    drain(a);
    send_all(a, "q", 1);
    expect_eof(a, 5000);
    SYS(close(a));

    /* EPOLLRDHUP on the peer's FIN. */
    int b = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    ctl(EPOLL_CTL_ADD, b, EPOLLIN | EPOLLRDHUP, 0xb);
    send_all(b, "w", 1);
    uint32_t e = wait_tag(0xb, 5000, "rdhup");
    CHECK((e & EPOLLIN) && (e & EPOLLRDHUP) && !(e & EPOLLHUP), "peer FIN: events 0x%x, want IN|RDHUP", e);
    SYS(close(b)); /* also leaves the set */

    /* A closed fd leaves the set, even with data pending. */
    int c2 = tcp_connect(AF_INET6, ct_peer6(), ct_port(1));
    ctl(EPOLL_CTL_ADD, c2, EPOLLIN, 0xc);
    send_all(c2, "d", 1);
    wait_tag(0xc, 5000, "before close");
    SYS(close(c2));
    expect_none(200, "closed fd");

    /* Reset: EPOLLHUP and EPOLLERR without asking. */
    int d = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    ctl(EPOLL_CTL_ADD, d, EPOLLIN, 0xd);
    send_all(d, "r", 1);
    e = wait_tag(0xd, 5000, "reset");
    CHECK((e & EPOLLHUP) && (e & EPOLLERR), "reset: events 0x%x, want HUP|ERR", e);
    SYS(epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL));
    SYS(close(d));

    /* A listening socket is readable with a connection to accept. */
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    ctl(EPOLL_CTL_ADD, l, EPOLLIN, 0x1e);
    expect_none(100, "idle listener");
    sync_signal("subject-listening");
    wait_tag(0x1e, 5000, "listener");
    int s = SYS(accept4(l, NULL, NULL, SOCK_NONBLOCK));
    expect_none(100, "listener after accept");
    expect_eof(s, 5000);
    SYS(close(s));
    SYS(close(l));
    SYS(close(ep));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");
    cmdpeer_serve(l4, 2); /* a, b */
    cmdpeer_serve(l6, 1); /* c2 */
    cmdpeer_serve(l4, 1); /* d */
    sync_wait("subject-listening");
    int fd = tcp_connect(AF_INET, ct_addr(), ct_port(5));
    SYS(close(fd));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "epoll", subject, peer_fn); }
