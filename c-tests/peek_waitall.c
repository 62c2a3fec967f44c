/* MSG_PEEK (data stays, a short peek, a long peek, MSG_DONTWAIT on an
 * empty socket) and MSG_WAITALL (one call collects data sent in three
 * pieces 100 ms apart; EOF ends it short; without it, recv returns what
 * is there). FIONREAD reports the queued byte count. */
#include "common.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void subject(void)
{
    char buf[4096];
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));

    /* Peek: the peer sends "hello world" in one write. */
    ERR(recv(a, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), EAGAIN);
    send_all(a, "1", 1);
    CHECK(wait_fd(a, POLLIN, 5000) & POLLIN, "no data");
    int64_t end = now_ms() + 5000;
    int q = 0;
    while (now_ms() < end) {
        SYS(ioctl(a, FIONREAD, &q));
        if (q >= 11)
            break;
        sleep_ms(10);
    }
    CHECK(q == 11, "FIONREAD %d, want 11", q);
    ssize_t n = SYS(recv(a, buf, 5, MSG_PEEK));
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "short peek: %zd '%.*s'", n, (int)n, buf);
    n = SYS(recv(a, buf, sizeof buf, MSG_PEEK));
    CHECK(n == 11 && memcmp(buf, "hello world", 11) == 0, "long peek: %zd", n);
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 11, "FIONREAD after peeks %d", q);
    n = SYS(recv(a, buf, 6, 0));
    CHECK(n == 6 && memcmp(buf, "hello ", 6) == 0, "read after peek: %zd", n);
    n = SYS(recv(a, buf, sizeof buf, MSG_PEEK));
    CHECK(n == 5 && memcmp(buf, "world", 5) == 0, "peek of the rest: %zd", n);
    n = SYS(read(a, buf, sizeof buf));
    CHECK(n == 5 && memcmp(buf, "world", 5) == 0, "read of the rest: %zd", n);
    SYS(ioctl(a, FIONREAD, &q));
    CHECK(q == 0, "FIONREAD when empty %d", q);

    /* Waitall: 3 x 1000 bytes, 100 ms apart. */
    send_all(a, "2", 1);
    int64_t t0 = now_ms();
    n = SYS(recv(a, buf, 3000, MSG_WAITALL));
    CHECK(n == 3000, "MSG_WAITALL returned %zd of 3000", n);
    CHECK(now_ms() - t0 >= 150, "MSG_WAITALL returned before the last piece was sent");
    for (int i = 0; i < 3000; i++)
        CHECK(buf[i] == (char)('a' + i / 1000), "MSG_WAITALL data at %d", i);

    /* Without MSG_WAITALL: the first piece alone. */
    send_all(a, "3", 1);
    CHECK(wait_fd(a, POLLIN, 5000) & POLLIN, "no data");
    n = SYS(recv(a, buf, 3000, 0));
    CHECK(n > 0 && n <= 1000, "plain recv returned %zd, want the first piece (<= 1000)", n);
    size_t got = (size_t)n;
    while (got < 3000) {
        n = SYS(recv(a, buf, 3000 - got, MSG_WAITALL));
        CHECK(n > 0, "rest: EOF");
        got += (size_t)n;
    }

    /* Waitall cut short by EOF: 500 bytes then FIN. */
    send_all(a, "4", 1);
    n = SYS(recv(a, buf, 3000, MSG_WAITALL));
    CHECK(n == 500, "MSG_WAITALL with EOF after 500 bytes returned %zd", n);
    CHECK(recv(a, buf, 1, 0) == 0, "no EOF after the short MSG_WAITALL");
    SYS(close(a));
    ct_log("ok");
}

static void peer_fn(void)
{
    char buf[1000];
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    sync_signal("peer-listening");
    int a = accept_timeout(l, 20000);
    int one = 1;
    SYS(setsockopt(a, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one));
    for (;;) {
        char c;
        CHECK(wait_fd(a, POLLIN, 20000), "no command");
        ssize_t n = SYS(recv(a, &c, 1, 0));
        CHECK(n == 1, "EOF before the last command");
        if (c == '1') {
            send_all(a, "hello world", 11);
        } else if (c == '2' || c == '3') {
            for (int i = 0; i < 3; i++) {
                memset(buf, 'a' + i, sizeof buf);
                send_all(a, buf, sizeof buf);
                sleep_ms(100);
            }
        } else if (c == '4') {
            memset(buf, 'z', 500);
            send_all(a, buf, 500);
            sleep_ms(100);
            SYS(shutdown(a, SHUT_WR));
            expect_eof(a, 5000);
            break;
        }
    }
    SYS(close(a));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "peek_waitall", subject, peer_fn); }
