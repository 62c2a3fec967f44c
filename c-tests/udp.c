/* UDP: sendto/recvfrom with source addresses (IPv4 and IPv6), datagram
 * boundaries, a large (fragmented) datagram, MSG_PEEK, MSG_TRUNC,
 * connect (send/recv, getpeername, other sources filtered out), and
 * ECONNREFUSED on a connected socket after an ICMP port unreachable. */
#include "common.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

/* Ports: 0 peer echo v4, 1 peer echo v6, 2 peer "other" v4 (sends only),
 * 3 closed, 10 subject v4, 11 subject v6. An echo of "twice" replies from
 * port 2 first, then from port 0. "quit" ends the peer. */

static ssize_t recv_from(int fd, void *buf, size_t len, int flags, struct sockaddr_storage *from)
{
    socklen_t flen = sizeof *from;
    CHECK(wait_fd(fd, POLLIN, 5000) & POLLIN, "no datagram within 5 s");
    ssize_t n = recvfrom(fd, buf, len, flags, (struct sockaddr *)from, &flen);
    CHECK(n >= 0, "recvfrom: %s", strerror(errno));
    return n;
}

static void expect_from(struct sockaddr_storage *from, int fam, const char *host, int port)
{
    struct sockaddr_storage want;
    mkaddr(&want, fam, host, port);
    CHECK(strcmp(addrstr((struct sockaddr *)from), addrstr((struct sockaddr *)&want)) == 0,
          "datagram from %s, want %s", addrstr((struct sockaddr *)from), addrstr((struct sockaddr *)&want));
}

static void to(int fd, int fam, const char *host, int port, const void *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, fam, host, port);
    ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl);
    CHECK(n == (ssize_t)len, "sendto %s: %zd (%s)", addrstr((struct sockaddr *)&ss), n, strerror(errno));
}

static void subject(void)
{
    static char buf[70000], big[8000];
    struct sockaddr_storage from;
    sync_wait("peer-ready");

    /* Unconnected v4. */
    int u = udp_bind(AF_INET, ct_addr(), ct_port(10));
    to(u, AF_INET, ct_peer(), ct_port(0), "hello", 5);
    ssize_t n = recv_from(u, buf, sizeof buf, 0, &from);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "echo: %zd bytes", n);
    expect_from(&from, AF_INET, ct_peer(), ct_port(0));

    /* Boundaries: two datagrams stay two. */
    to(u, AF_INET, ct_peer(), ct_port(0), "0123456789", 10);
    to(u, AF_INET, ct_peer(), ct_port(0), "abcdefghijklmnopqrst", 20);
    n = recv_from(u, buf, sizeof buf, 0, &from);
    CHECK(n == 10, "first datagram %zd bytes, want 10", n);
    n = recv_from(u, buf, sizeof buf, 0, &from);
    CHECK(n == 20 && memcmp(buf, "abcdefghijklmnopqrst", 20) == 0, "second datagram %zd bytes", n);

    /* 8000 bytes: fragmented on a 1500-byte link, both ways. */
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 31 + 7);
    to(u, AF_INET, ct_peer(), ct_port(0), big, sizeof big);
    n = recv_from(u, buf, sizeof buf, 0, &from);
    CHECK(n == (ssize_t)sizeof big && memcmp(buf, big, sizeof big) == 0, "8000-byte echo: %zd bytes", n);

    /* MSG_PEEK, then the same datagram again; MSG_TRUNC. */
    to(u, AF_INET, ct_peer(), ct_port(0), "peekaboo", 8);
    n = recv_from(u, buf, 4, MSG_PEEK, &from);
    CHECK(n == 4 && memcmp(buf, "peek", 4) == 0, "MSG_PEEK: %zd", n);
    n = recv_from(u, buf, sizeof buf, MSG_PEEK, &from);
    CHECK(n == 8, "second MSG_PEEK: %zd", n);
    n = recv_from(u, buf, 3, MSG_TRUNC, &from);
    CHECK(n == 8 && memcmp(buf, "pee", 3) == 0, "MSG_TRUNC: returned %zd, want the full length 8", n);
    ERR(recv(u, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    to(u, AF_INET, ct_peer(), ct_port(0), "truncated!", 10);
    CHECK(wait_fd(u, POLLIN, 5000) & POLLIN, "no datagram");
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    n = SYS(recvmsg(u, &mh, 0));
    CHECK(n == 4 && (mh.msg_flags & MSG_TRUNC), "recvmsg: %zd bytes, flags 0x%x, want 4 and MSG_TRUNC",
          n, mh.msg_flags);
    expect_from(&from, AF_INET, ct_peer(), ct_port(0));

    /* Connected: send/recv, getpeername, other sources filtered out. */
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(0));
    SYS(connect(u, (struct sockaddr *)&ss, sl));
    check_ends(u); /* getsockname of a connected socket: the routed source */
    socklen_t pl = sizeof from;
    SYS(getpeername(u, (struct sockaddr *)&from, &pl));
    expect_from(&from, AF_INET, ct_peer(), ct_port(0));
    CHECK(SYS(send(u, "twice", 5, 0)) == 5, "send");
    n = recv_from(u, buf, sizeof buf, 0, &from);
    expect_from(&from, AF_INET, ct_peer(), ct_port(0));
    CHECK(n == 5, "connected recv %zd", n);
    sleep_ms(100);
    ERR(recv(u, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    SYS(close(u));

    /* Ephemeral port, v6. */
    int u6 = SYS(socket(AF_INET6, SOCK_DGRAM, 0));
    struct sockaddr_storage any6;
    sl = mkaddr(&any6, AF_INET6, ct_addr6(), 0);
    SYS(bind(u6, (struct sockaddr *)&any6, sl));
    pl = sizeof from;
    SYS(getsockname(u6, (struct sockaddr *)&from, &pl));
    CHECK(pl == sizeof(struct sockaddr_in6) && sa_port((struct sockaddr *)&from) != 0,
          "v6 ephemeral getsockname: len %u port %d", pl, sa_port((struct sockaddr *)&from));
    to(u6, AF_INET6, ct_peer6(), ct_port(1), "hello6", 6);
    n = recv_from(u6, buf, sizeof buf, 0, &from);
    CHECK(n == 6 && memcmp(buf, "hello6", 6) == 0, "v6 echo: %zd", n);
    expect_from(&from, AF_INET6, ct_peer6(), ct_port(1));
    to(u6, AF_INET6, ct_peer6(), ct_port(1), big, sizeof big);
    n = recv_from(u6, buf, sizeof buf, 0, &from);
    CHECK(n == (ssize_t)sizeof big && memcmp(buf, big, sizeof big) == 0, "v6 8000-byte echo: %zd", n);
    SYS(close(u6));

    /* ICMP port unreachable on a connected socket: ECONNREFUSED, v4 and v6. */
    for (int i = 0; i < 2; i++) {
        int fam = i == 0 ? AF_INET : AF_INET6;
        int c = SYS(socket(fam, SOCK_DGRAM, 0));
        sl = mkaddr(&ss, fam, i == 0 ? ct_peer() : ct_peer6(), ct_port(3));
        SYS(connect(c, (struct sockaddr *)&ss, sl));
        check_ends(c);
        CHECK(SYS(send(c, "anyone?", 7, 0)) == 7, "send to closed port");
        int ev = wait_fd(c, POLLIN, 5000);
        CHECK(ev & POLLERR, "%s: no POLLERR after sending to a closed port (revents 0x%x)",
              i == 0 ? "v4" : "v6", ev);
        ERR(recv(c, buf, sizeof buf, MSG_DONTWAIT), ECONNREFUSED);
        ERR(recv(c, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
        SYS(close(c));
    }
    sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(0));
    int q = SYS(socket(AF_INET, SOCK_DGRAM, 0));
    SYS(sendto(q, "quit", 4, 0, (struct sockaddr *)&ss, sl));
    SYS(close(q));
    ct_log("ok");
}

static void peer_fn(void)
{
    static char buf[70000];
    int e4 = udp_bind(AF_INET, ct_peer(), ct_port(0));
    int e6 = udp_bind(AF_INET6, ct_peer6(), ct_port(1));
    int other = udp_bind(AF_INET, ct_peer(), ct_port(2));
    sync_signal("peer-ready");
    for (;;) {
        struct pollfd p[2] = {{.fd = e4, .events = POLLIN}, {.fd = e6, .events = POLLIN}};
        int n = poll(p, 2, 25000);
        CHECK(n > 0, "peer: no datagram (and no quit) within 25 s");
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t len = SYS(recvfrom(p[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
            CHECK(is_subject_addr((struct sockaddr *)&from), "datagram from %s, not from the subject",
                  addrstr((struct sockaddr *)&from));
            if (len == 4 && memcmp(buf, "quit", 4) == 0)
                return;
            if (len == 5 && memcmp(buf, "twice", 5) == 0)
                SYS(sendto(other, buf, (size_t)len, 0, (struct sockaddr *)&from, fl));
            SYS(sendto(p[i].fd, buf, (size_t)len, 0, (struct sockaddr *)&from, fl));
        }
    }
}

int main(int argc, char **argv) { return ct_main(argc, argv, "udp", subject, peer_fn); }
