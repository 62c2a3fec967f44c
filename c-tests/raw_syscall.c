/* Socket calls made by number through syscall(2), as libuv makes its UDP
 * sends and receives (__NR_sendmmsg, __NR_recvmmsg): a UDP exchange with
 * sendmmsg/recvmmsg/sendto/recvfrom/sendmsg/recvmsg, and a TCP connection
 * made, named and used with connect/getsockname/getpeername/write/read/
 * setsockopt/getsockopt/shutdown/close, every one of them by number. The
 * peer checks that each datagram and the connection came from the
 * subject's own address. */
#include "common.h"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Ports: 0 peer UDP echo, 1 peer TCP echo. */

static void subject(void)
{
    sync_wait("peer-ready");
    struct sockaddr_storage peer;
    socklen_t pl = mkaddr(&peer, AF_INET, ct_peer(), ct_port(0));
    int u = (int)SYS(syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0));

    /* Two datagrams in one sendmmsg, both echoed, both read by one
     * recvmmsg (MSG_WAITFORONE would return after the first). */
    char a[] = "first", b[] = "second-one";
    struct iovec iv[2] = {{a, 5}, {b, 10}};
    struct mmsghdr out[2] = {0};
    for (int i = 0; i < 2; i++) {
        out[i].msg_hdr.msg_name = &peer;
        out[i].msg_hdr.msg_namelen = pl;
        out[i].msg_hdr.msg_iov = &iv[i];
        out[i].msg_hdr.msg_iovlen = 1;
    }
    long n = SYS(syscall(SYS_sendmmsg, u, out, 2, 0));
    CHECK(n == 2, "sendmmsg sent %ld of 2", n);
    char r0[64], r1[64];
    struct iovec rv[2] = {{r0, sizeof r0}, {r1, sizeof r1}};
    struct sockaddr_storage from[2];
    struct mmsghdr in[2] = {0};
    for (int i = 0; i < 2; i++) {
        in[i].msg_hdr.msg_name = &from[i];
        in[i].msg_hdr.msg_namelen = sizeof from[i];
        in[i].msg_hdr.msg_iov = &rv[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    int got = 0;
    while (got < 2) {
        CHECK(wait_fd(u, POLLIN, 5000) & POLLIN, "no echo within 5 s (%d of 2)", got);
        n = SYS(syscall(SYS_recvmmsg, u, in + got, 2 - got, MSG_DONTWAIT, NULL));
        got += (int)n;
    }
    CHECK(in[0].msg_len == 5 && memcmp(r0, "first", 5) == 0, "first echo: %u bytes", in[0].msg_len);
    CHECK(in[1].msg_len == 10 && memcmp(r1, "second-one", 10) == 0, "second echo: %u bytes", in[1].msg_len);
    CHECK(is_peer_addr((struct sockaddr *)&from[0]), "echo from %s", addrstr((struct sockaddr *)&from[0]));

    /* sendto/recvfrom and sendmsg/recvmsg by number. */
    n = SYS(syscall(SYS_sendto, u, "third", 5, 0, &peer, pl));
    CHECK(n == 5, "sendto: %ld", n);
    CHECK(wait_fd(u, POLLIN, 5000) & POLLIN, "no echo of the sendto");
    struct sockaddr_storage f;
    socklen_t fl = sizeof f;
    n = SYS(syscall(SYS_recvfrom, u, r0, sizeof r0, 0, &f, &fl));
    CHECK(n == 5 && memcmp(r0, "third", 5) == 0, "recvfrom: %ld", n);
    struct iovec one = {"fourth", 6};
    struct msghdr m = {.msg_name = &peer, .msg_namelen = pl, .msg_iov = &one, .msg_iovlen = 1};
    CHECK(SYS(syscall(SYS_sendmsg, u, &m, 0)) == 6, "sendmsg");
    CHECK(wait_fd(u, POLLIN, 5000) & POLLIN, "no echo of the sendmsg");
    struct iovec back = {r0, sizeof r0};
    struct msghdr mr = {.msg_iov = &back, .msg_iovlen = 1};
    n = SYS(syscall(SYS_recvmsg, u, &mr, 0));
    CHECK(n == 6 && memcmp(r0, "fourth", 6) == 0, "recvmsg: %ld", n);
    SYS(syscall(SYS_sendto, u, "quit", 4, 0, &peer, pl));
    SYS(syscall(SYS_close, u));

    /* TCP, every call by number. */
    int t = (int)SYS(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
    int one_i = 1;
    SYS(syscall(SYS_setsockopt, t, IPPROTO_TCP, TCP_NODELAY, &one_i, sizeof one_i));
    int v = 0;
    socklen_t vl = sizeof v;
    SYS(syscall(SYS_getsockopt, t, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    CHECK(v != 0, "TCP_NODELAY reads back %d", v);
    socklen_t tl = mkaddr(&peer, AF_INET, ct_peer(), ct_port(1));
    SYS(syscall(SYS_connect, t, &peer, tl));
    struct sockaddr_storage me, them;
    socklen_t ml = sizeof me, thl = sizeof them;
    SYS(syscall(SYS_getsockname, t, &me, &ml));
    SYS(syscall(SYS_getpeername, t, &them, &thl));
    CHECK(is_subject_addr((struct sockaddr *)&me), "local address %s", addrstr((struct sockaddr *)&me));
    CHECK(is_peer_addr((struct sockaddr *)&them), "peer address %s", addrstr((struct sockaddr *)&them));
    CHECK(SYS(syscall(SYS_write, t, "over tcp", 8)) == 8, "write");
    size_t have = 0;
    while (have < 8) {
        CHECK(wait_fd(t, POLLIN, 5000) & POLLIN, "no TCP echo");
        n = SYS(syscall(SYS_read, t, r0 + have, sizeof r0 - have));
        CHECK(n > 0, "read: end of stream after %zu bytes", have);
        have += (size_t)n;
    }
    CHECK(memcmp(r0, "over tcp", 8) == 0, "TCP echo differs");
    SYS(syscall(SYS_shutdown, t, SHUT_WR));
    expect_eof(t, 5000);
    SYS(syscall(SYS_close, t));
}

static void peer_fn(void)
{
    char buf[256];
    int u = udp_bind(AF_INET, ct_peer(), ct_port(0));
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(1), 1);
    sync_signal("peer-ready");
    for (;;) {
        CHECK(wait_fd(u, POLLIN, 20000) & POLLIN, "peer: no datagram within 20 s");
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = SYS(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
        CHECK(is_subject_addr((struct sockaddr *)&from), "datagram from %s", addrstr((struct sockaddr *)&from));
        if (n == 4 && memcmp(buf, "quit", 4) == 0)
            break;
        SYS(sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&from, fl));
    }
    int c = accept_timeout(l, 20000);
    check_ends(c);
    char got[8];
    recv_exact(c, got, 8);
    send_all(c, got, 8);
    expect_eof(c, 10000);
    close(c);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "raw_syscall", subject, peer_fn); }
