/* Blocking TCP, both ways and both families: the subject as client of the
 * peer's echo server, and as server for the peer's client. Checks the
 * data, getsockname/getpeername (with truncation), and orderly close. */
#include "common.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <unistd.h>

/* Ports: 0/1 peer echo servers (v4/v6); 2/3 subject servers (v4/v6). */
static const char *self(int fam) { return fam == AF_INET ? ct_addr() : ct_addr6(); }
static const char *peer(int fam) { return fam == AF_INET ? ct_peer() : ct_peer6(); }

static void fill(char *buf, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
}

static void check_names(int fd, int fam, const char *lhost, int lport,
                        const char *rhost, int rport)
{
    struct sockaddr_storage ss, want;
    socklen_t len = sizeof ss;
    SYS(getsockname(fd, (struct sockaddr *)&ss, &len));
    socklen_t wlen = mkaddr(&want, fam, lhost, lport ? lport : sa_port((struct sockaddr *)&ss));
    CHECK(len == wlen, "getsockname length %u, want %u", len, wlen);
    CHECK(ss.ss_family == fam, "getsockname family %d", ss.ss_family);
    CHECK(strcmp(addrstr((struct sockaddr *)&ss), addrstr((struct sockaddr *)&want)) == 0,
          "getsockname %s, want %s", addrstr((struct sockaddr *)&ss),
          addrstr((struct sockaddr *)&want));
    CHECK(sa_port((struct sockaddr *)&ss) != 0, "getsockname port 0");
    len = sizeof ss;
    SYS(getpeername(fd, (struct sockaddr *)&ss, &len));
    wlen = mkaddr(&want, fam, rhost, rport ? rport : sa_port((struct sockaddr *)&ss));
    CHECK(len == wlen, "getpeername length %u, want %u", len, wlen);
    CHECK(strcmp(addrstr((struct sockaddr *)&ss), addrstr((struct sockaddr *)&want)) == 0,
          "getpeername %s, want %s", addrstr((struct sockaddr *)&ss),
          addrstr((struct sockaddr *)&want));
    /* A short buffer: truncated copy, full length reported. */
    struct sockaddr_storage small;
    memset(&small, 0xab, sizeof small);
    len = 4;
    SYS(getsockname(fd, (struct sockaddr *)&small, &len));
    CHECK(len == wlen, "truncated getsockname reports length %u, want %u", len, wlen);
    CHECK(((unsigned char *)&small)[4] == 0xab, "getsockname wrote past the given length");
    CHECK(small.ss_family == fam, "truncated getsockname: family %d", small.ss_family);
}

/* Echo exchange: sizes 1 .. 100000 bytes. */
static void exchange(int fd)
{
    static char out[100000], in[100000];
    const size_t sizes[] = {1, 100, 1460, 1461, 5000, 65536, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t n = htonl((uint32_t)sizes[i]);
        fill(out, sizes[i], (int)i);
        send_all(fd, &n, 4);
        send_all(fd, out, sizes[i]);
        recv_exact(fd, in, sizes[i]);
        CHECK(memcmp(in, out, sizes[i]) == 0, "echo of %zu bytes differs", sizes[i]);
    }
    uint32_t zero = 0;
    send_all(fd, &zero, 4);
}

/* The other end of exchange(). */
static void echo_session(int fd)
{
    static char buf[100000];
    for (;;) {
        uint32_t n;
        recv_exact(fd, &n, 4);
        n = ntohl(n);
        if (n == 0)
            break;
        CHECK(n <= sizeof buf, "bad length %u", n);
        recv_exact(fd, buf, n);
        send_all(fd, buf, n);
    }
}

static void subject(void)
{
    int fams[2] = {AF_INET, AF_INET6};
    sync_wait("peer-listening");
    for (int i = 0; i < 2; i++) {
        int fam = fams[i];
        /* Client. */
        int fd = tcp_connect(fam, peer(fam), ct_port(i));
        check_names(fd, fam, self(fam), 0, peer(fam), ct_port(i));
        exchange(fd);
        expect_eof(fd, 5000);
        SYS(close(fd));
        /* Server. */
        int lfd = tcp_listen(fam, self(fam), ct_port(2 + i), 8);
        {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            SYS(getsockname(lfd, (struct sockaddr *)&ss, &len));
            CHECK(sa_port((struct sockaddr *)&ss) == ct_port(2 + i),
                  "listener bound to port %d", sa_port((struct sockaddr *)&ss));
            ERR(getpeername(lfd, (struct sockaddr *)&ss, &len), ENOTCONN);
        }
        sync_signal(fam == AF_INET ? "subject-listening4" : "subject-listening6");
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        int c = SYS(accept(lfd, (struct sockaddr *)&from, &flen));
        struct sockaddr_storage want;
        CHECK(flen == mkaddr(&want, fam, peer(fam), 0), "accept address length %u", flen);
        check_names(c, fam, self(fam), ct_port(2 + i), peer(fam), sa_port((struct sockaddr *)&from));
        echo_session(c);
        SYS(close(c));
        SYS(close(lfd));
    }
    ct_log("ok");
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");
    int fams[2] = {AF_INET, AF_INET6};
    for (int i = 0; i < 2; i++) {
        int fam = fams[i];
        int c = accept_timeout(i == 0 ? l4 : l6, 20000);
        echo_session(c);
        SYS(close(c));
        sync_wait(fam == AF_INET ? "subject-listening4" : "subject-listening6");
        int fd = tcp_connect(fam, self(fam), ct_port(2 + i));
        exchange(fd);
        expect_eof(fd, 5000);
        SYS(close(fd));
    }
}

int main(int argc, char **argv) { return ct_main(argc, argv, "tcp_basic", subject, peer_fn); }
