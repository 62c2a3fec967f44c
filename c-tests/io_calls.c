/* The other data and control calls on sockets: readv/writev, sendmsg/
 * recvmsg with several iovecs, sendfile from a file, sendmmsg/recvmmsg,
 * MSG_DONTWAIT, FIONBIO, FIONREAD, SIOCOUTQ, accept4 flags, and
 * close_range over sockets. The peer echoes TCP and UDP. */
#include "common.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

/* Ports: 0 peer TCP echo, 1 peer UDP echo, 5 subject listener. */

static void subject(void)
{
    char buf[70000];
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));

    /* writev / readv. */
    struct iovec out[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    CHECK(SYS(writev(a, out, 3)) == 8, "writev");
    char x[2], y[6];
    struct iovec in[2] = {{x, 2}, {y, 6}};
    CHECK(wait_fd(a, POLLIN, 5000), "no echo");
    size_t got = 0;
    while (got < 8) {
        ssize_t n = SYS(readv(a, in, 2));
        CHECK(n > 0, "readv EOF");
        got += (size_t)n;
        /* the echo may come in pieces: shift the iovecs */
        size_t left = (size_t)n;
        for (int i = 0; i < 2 && left; i++) {
            size_t k = left < in[i].iov_len ? left : in[i].iov_len;
            in[i].iov_base = (char *)in[i].iov_base + k;
            in[i].iov_len -= k;
            left -= k;
        }
    }
    CHECK(memcmp(x, "ab", 2) == 0 && memcmp(y, "cdefgh", 6) == 0, "readv scattered the echo wrongly");

    /* sendmsg / recvmsg. */
    struct iovec mo[2] = {{"hello ", 6}, {"sendmsg", 7}};
    struct msghdr mh = {.msg_iov = mo, .msg_iovlen = 2};
    CHECK(SYS(sendmsg(a, &mh, MSG_NOSIGNAL)) == 13, "sendmsg");
    recv_exact(a, buf, 13);
    CHECK(memcmp(buf, "hello sendmsg", 13) == 0, "sendmsg echo");

    /* MSG_DONTWAIT, FIONBIO, FIONREAD, SIOCOUTQ. */
    ERR(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    int on = 1;
    SYS(ioctl(a, FIONBIO, &on));
    CHECK(SYS(fcntl(a, F_GETFL)) & O_NONBLOCK, "FIONBIO did not set O_NONBLOCK");
    ERR(recv(a, buf, sizeof buf, 0), EAGAIN);
    on = 0;
    SYS(ioctl(a, FIONBIO, &on));
    CHECK(!(SYS(fcntl(a, F_GETFL)) & O_NONBLOCK), "FIONBIO 0 did not clear O_NONBLOCK");
    int q = -1;
    SYS(ioctl(a, SIOCOUTQ, &q));
    CHECK(q >= 0, "SIOCOUTQ %d", q);
    send_all(a, "0123456789", 10);
    int64_t end = now_ms() + 5000;
    do {
        SYS(ioctl(a, FIONREAD, &q));
    } while (q < 10 && now_ms() < end);
    CHECK(q == 10, "FIONREAD %d, want 10", q);
    recv_exact(a, buf, 10);
    end = now_ms() + 5000;
    do {
        SYS(ioctl(a, SIOCOUTQ, &q));
    } while (q != 0 && now_ms() < end);
    CHECK(q == 0, "SIOCOUTQ %d after everything was acknowledged", q);

    /* sendfile: 65000 bytes of a file to the socket. */
    char path[] = "/tmp/ct-sendfile-XXXXXX";
    int f = SYS(mkstemp(path));
    unlink(path);
    for (int i = 0; i < 65000; i++)
        buf[i] = (char)(i * 13);
    CHECK(SYS(write(f, buf, 65000)) == 65000, "write file");
    off_t off = 0;
    size_t sent = 0;
    while (sent < 65000) {
        ssize_t n = sendfile(a, f, &off, 65000 - sent);
        CHECK(n > 0, "sendfile: %zd (%s)", n, strerror(errno));
        sent += (size_t)n;
    }
    CHECK(off == 65000, "sendfile offset %lld", (long long)off);
    static char back[65000];
    recv_exact(a, back, 65000);
    CHECK(memcmp(back, buf, 65000) == 0, "sendfile echo differs");
    SYS(close(f));
    SYS(shutdown(a, SHUT_WR));
    expect_eof(a, 5000);
    SYS(close(a));

    /* sendmmsg / recvmmsg on UDP. */
    int u = SYS(socket(AF_INET6, SOCK_DGRAM, 0));
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET6, ct_peer6(), ct_port(1));
    SYS(connect(u, (struct sockaddr *)&ss, sl));
    struct mmsghdr mm[3];
    struct iovec mv[3] = {{"one", 3}, {"two!", 4}, {"three", 5}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &mv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(SYS(sendmmsg(u, mm, 3, 0)) == 3, "sendmmsg");
    char rb[3][16];
    struct iovec rv[3] = {{rb[0], 16}, {rb[1], 16}, {rb[2], 16}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &rv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int have = 0;
    end = now_ms() + 5000;
    while (have < 3 && now_ms() < end) {
        CHECK(wait_fd(u, POLLIN, 5000), "no UDP echo");
        int n = SYS(recvmmsg(u, mm + have, (unsigned)(3 - have), MSG_DONTWAIT, NULL));
        have += n;
    }
    CHECK(have == 3 && mm[0].msg_len == 3 && mm[1].msg_len == 4 && mm[2].msg_len == 5 &&
              memcmp(rb[2], "three", 5) == 0,
          "recvmmsg: %d messages", have);
    SYS(close(u));

    /* accept4 flags; close_range over sockets. */
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    sync_signal("subject-listening");
    CHECK(wait_fd(l, POLLIN, 5000), "no connection");
    int s = SYS(accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
    CHECK(SYS(fcntl(s, F_GETFL)) & O_NONBLOCK, "accept4 SOCK_NONBLOCK");
    CHECK(SYS(fcntl(s, F_GETFD)) & FD_CLOEXEC, "accept4 SOCK_CLOEXEC");
    ERR(recv(s, buf, 1, 0), EAGAIN);
    int s2 = SYS(dup2(s, 500));
    int s3 = SYS(dup2(s, 501));
    SYS(close(s));
    SYS(close_range((unsigned)s2, (unsigned)s3, 0));
    ERR(fcntl(s2, F_GETFD), EBADF);
    sync_wait("peer-saw-eof");
    SYS(close(l));
    ct_log("ok");
}

static void peer_fn(void)
{
    static char buf[70000];
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int u = udp_bind(AF_INET6, ct_peer6(), ct_port(1));
    sync_signal("peer-listening");
    int a = accept_timeout(l, 20000);
    for (;;) {
        CHECK(wait_fd(a, POLLIN, 20000), "echo: idle 20 s");
        ssize_t n = SYS(recv(a, buf, sizeof buf, 0));
        if (n == 0)
            break;
        send_all(a, buf, (size_t)n);
    }
    SYS(close(a));
    for (int i = 0; i < 3; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        CHECK(wait_fd(u, POLLIN, 20000), "no datagram");
        ssize_t n = SYS(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
        CHECK(is_subject_addr((struct sockaddr *)&from), "datagram from %s", addrstr((struct sockaddr *)&from));
        SYS(sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&from, fl));
    }
    sync_wait("subject-listening");
    int fd = tcp_connect(AF_INET, ct_addr(), ct_port(5));
    expect_eof(fd, 10000);
    sync_signal("peer-saw-eof");
    SYS(close(fd));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "io_calls", subject, peer_fn); }
