/* shutdown: SHUT_WR (peer sees EOF, we still read its reply, our sends
 * fail with EPIPE, poll shows POLLHUP once both sides are done), the
 * peer's SHUT_WR (POLLRDHUP, EOF, we still send 100 kB), SHUT_RD (reads
 * give EOF at once, sends still work), SHUT_RDWR, and EINVAL/ENOTCONN. */
#include "common.h"

#include <poll.h>
#include <unistd.h>

#define BIG 100000

static void pattern(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i % 251);
}

static void subject(void)
{
    static char buf[BIG], big[BIG];
    char c;
    pattern(big, BIG);
    sync_wait("peer-listening");

    /* 1. Our SHUT_WR. */
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(a, "hello", 5);
    SYS(shutdown(a, SHUT_WR));
    ERR(send(a, "x", 1, MSG_NOSIGNAL), EPIPE);
    recv_exact(a, buf, 9);
    CHECK(memcmp(buf, "got:hello", 9) == 0, "reply after SHUT_WR: '%.9s'", buf);
    expect_eof(a, 5000);
    int ev = wait_fd(a, POLLIN, 1000);
    CHECK((ev & POLLHUP) && (ev & POLLIN), "both sides shut: revents 0x%x, want POLLIN|POLLHUP", ev);
    SYS(close(a));

    /* 2. The peer's SHUT_WR: we read EOF and keep sending. */
    int b = tcp_connect(AF_INET6, ct_peer6(), ct_port(1));
    ev = wait_fd(b, POLLRDHUP, 5000);
    CHECK(ev & POLLRDHUP, "peer SHUT_WR: revents 0x%x, want POLLRDHUP", ev);
    CHECK(!(ev & POLLHUP), "peer SHUT_WR alone gave POLLHUP");
    CHECK(recv(b, &c, 1, 0) == 0, "peer SHUT_WR: recv not 0");
    CHECK(recv(b, &c, 1, MSG_DONTWAIT) == 0, "EOF is sticky");
    send_all(b, big, BIG);
    SYS(close(b));
    sync_wait("peer-got-100k");

    /* 3. Our SHUT_RD: EOF at once, sending still works. */
    int d = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    SYS(shutdown(d, SHUT_RD));
    CHECK(recv(d, &c, 1, MSG_DONTWAIT) == 0, "after SHUT_RD, recv is not EOF");
    CHECK(recv(d, &c, 1, 0) == 0, "after SHUT_RD, blocking recv is not EOF");
    ev = wait_fd(d, POLLIN | POLLRDHUP, 1000);
    CHECK((ev & POLLIN) && (ev & POLLRDHUP), "after SHUT_RD: revents 0x%x, want POLLIN|POLLRDHUP", ev);
    send_all(d, "still-sending", 13);
    SYS(close(d));
    sync_wait("peer-got-still");

    /* 4. SHUT_RDWR. */
    int e = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    SYS(shutdown(e, SHUT_RDWR));
    CHECK(recv(e, &c, 1, MSG_DONTWAIT) == 0, "after SHUT_RDWR, recv is not EOF");
    ERR(send(e, "x", 1, MSG_NOSIGNAL), EPIPE);
    ev = wait_fd(e, POLLIN | POLLOUT, 1000);
    CHECK(ev & POLLHUP, "after SHUT_RDWR: revents 0x%x, want POLLHUP", ev);
    ERR(shutdown(e, 7), EINVAL);
    sync_wait("peer-saw-rdwr-eof");
    SYS(close(e));

    int u = SYS(socket(AF_INET, SOCK_DGRAM, 0));
    ERR(shutdown(u, SHUT_RDWR), ENOTCONN);
    SYS(close(u));
    ct_log("ok");
}

static void read_to_eof(int fd, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        CHECK(wait_fd(fd, POLLIN, 20000), "no data or EOF in 20 s");
        ssize_t n = SYS(recv(fd, buf + *len, cap - *len, 0));
        if (n == 0)
            return;
        *len += (size_t)n;
        CHECK(*len < cap, "too much data");
    }
}

static void peer_fn(void)
{
    static char buf[BIG + 100], big[BIG];
    size_t len;
    pattern(big, BIG);
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");

    int a = accept_timeout(l4, 20000);
    read_to_eof(a, buf, sizeof buf, &len);
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0, "1: got %zu bytes before EOF", len);
    send_all(a, "got:hello", 9);
    SYS(close(a));

    int b = accept_timeout(l6, 20000);
    SYS(shutdown(b, SHUT_WR));
    read_to_eof(b, buf, sizeof buf, &len);
    CHECK(len == BIG && memcmp(buf, big, BIG) == 0, "2: got %zu bytes after our SHUT_WR, want %d", len, BIG);
    SYS(close(b));
    sync_signal("peer-got-100k");

    int d = accept_timeout(l4, 20000);
    read_to_eof(d, buf, sizeof buf, &len);
    CHECK(len == 13 && memcmp(buf, "still-sending", 13) == 0, "3: got %zu bytes", len);
    SYS(close(d));
    sync_signal("peer-got-still");

    int e = accept_timeout(l4, 20000);
    expect_eof(e, 5000);
    sync_signal("peer-saw-rdwr-eof");
    SYS(close(e));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "shutdown", subject, peer_fn); }
