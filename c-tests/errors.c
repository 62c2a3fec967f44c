/* Error cases, each with the errno Linux gives: ECONNREFUSED (v4, v6),
 * EADDRINUSE, EADDRNOTAVAIL, EINVAL (short address, accept on a socket
 * that is not listening, listen on a connected socket, double bind),
 * EAFNOSUPPORT, ENOTCONN (recv, getpeername, shutdown), EPIPE from send
 * on an unconnected socket, EISCONN, ECONNRESET, EPIPE with MSG_NOSIGNAL
 * and SIGPIPE without it (send and write), EBADF/ENOTSOCK. */
#include "cmdpeer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

/* Ports: 0 peer cmd v4, 1 peer cmd v6, 2 closed, 5 subject (in use). */

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

static void subject(void)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char c = 'x';
    sync_wait("peer-listening");

    /* Refused. */
    int fd = SYS(socket(AF_INET, SOCK_STREAM, 0));
    sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(2));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), ECONNREFUSED);
    SYS(close(fd));
    fd = SYS(socket(AF_INET6, SOCK_STREAM, 0));
    sl = mkaddr(&ss, AF_INET6, ct_peer6(), ct_port(2));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), ECONNREFUSED);
    SYS(close(fd));

    /* Addresses. */
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    fd = SYS(socket(AF_INET, SOCK_STREAM, 0));
    sl = mkaddr(&ss, AF_INET, ct_addr(), ct_port(5));
    ERR(bind(fd, (struct sockaddr *)&ss, sl), EADDRINUSE);
    sl = mkaddr(&ss, AF_INET, "10.77.0.99", ct_port(5));
    ERR(bind(fd, (struct sockaddr *)&ss, sl), EADDRNOTAVAIL);
    sl = mkaddr(&ss, AF_INET, ct_addr(), 0);
    ERR(bind(fd, (struct sockaddr *)&ss, sl - 4), EINVAL);
    SYS(bind(fd, (struct sockaddr *)&ss, sl));
    ERR(bind(fd, (struct sockaddr *)&ss, sl), EINVAL); /* already bound */
    ERR(accept(fd, NULL, NULL), EINVAL);                  /* bound, not listening */
    SYS(close(fd));
    fd = SYS(socket(AF_INET, SOCK_STREAM, 0));
    ERR(accept(fd, NULL, NULL), EINVAL); /* unbound */
    ERR(recv(fd, &c, 1, 0), ENOTCONN);
    ERR(send(fd, &c, 1, MSG_NOSIGNAL), EPIPE);
    sl = sizeof ss;
    ERR(getpeername(fd, (struct sockaddr *)&ss, &sl), ENOTCONN);
    ERR(shutdown(fd, SHUT_RDWR), ENOTCONN);
    sl = mkaddr(&ss, AF_INET6, ct_peer6(), ct_port(0));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), EAFNOSUPPORT);
    SYS(close(fd));
    fd = SYS(socket(AF_INET6, SOCK_STREAM, 0));
    sl = mkaddr(&ss, AF_INET6, "fd77::99", 0);
    ERR(bind(fd, (struct sockaddr *)&ss, sl), EADDRNOTAVAIL);
    SYS(close(fd));
    SYS(close(l));

    /* Connected: EISCONN, listen refused. */
    fd = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(0));
    ERR(connect(fd, (struct sockaddr *)&ss, sl), EISCONN);
    ERR(listen(fd, 4), EINVAL);
    ERR(accept(fd, NULL, NULL), EINVAL);

    /* EPIPE after our own SHUT_WR: MSG_NOSIGNAL, then SIGPIPE. */
    struct sigaction sa = {.sa_handler = on_sigpipe};
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGPIPE, &sa, NULL));
    SYS(shutdown(fd, SHUT_WR));
    ERR(send(fd, &c, 1, MSG_NOSIGNAL), EPIPE);
    CHECK(sigpipes == 0, "SIGPIPE raised despite MSG_NOSIGNAL");
    ERR(send(fd, &c, 1, 0), EPIPE);
    CHECK(sigpipes == 1, "send without MSG_NOSIGNAL: %d SIGPIPEs, want 1", (int)sigpipes);
    ERR(write(fd, &c, 1), EPIPE);
    CHECK(sigpipes == 2, "write: %d SIGPIPEs, want 2", (int)sigpipes);
    expect_eof(fd, 5000); /* the peer closes on our FIN */
    SYS(close(fd));

    /* EPIPE after the peer closed and reset us. */
    fd = tcp_connect(AF_INET6, ct_peer6(), ct_port(1));
    send_all(fd, "q", 1);
    expect_eof(fd, 5000);
    int err = 0;
    for (int i = 0; i < 100 && !err; i++) {
        if (send(fd, "late", 4, MSG_NOSIGNAL) < 0)
            err = errno;
        else
            sleep_ms(20);
    }
    CHECK(err == EPIPE || err == ECONNRESET, "send after the peer closed: %s, want EPIPE or ECONNRESET",
          errno_name(err));
    ERR(send(fd, "late", 4, MSG_NOSIGNAL), EPIPE);
    int before = sigpipes;
    ERR(send(fd, "late", 4, 0), EPIPE);
    CHECK(sigpipes == before + 1, "no SIGPIPE on a reset connection");
    SYS(close(fd));

    /* ECONNRESET: the peer aborts. */
    fd = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_all(fd, "r", 1);
    CHECK(wait_fd(fd, POLLIN, 5000), "reset never arrived");
    ERR(recv(fd, &c, 1, 0), ECONNRESET);
    /* Linux: once the error is reported, the dead connection reads as EOF. */
    ssize_t r = recv(fd, &c, 1, 0);
    CHECK(r == 0, "recv after ECONNRESET: %zd (%s), want 0 (EOF)", r, r < 0 ? errno_name(errno) : "data");
    SYS(close(fd));

    /* Closed and non-socket fds. */
    ERR(send(fd, &c, 1, MSG_NOSIGNAL), EBADF);
    int nul = SYS(open("/dev/null", O_RDWR));
    ERR(send(nul, &c, 1, MSG_NOSIGNAL), ENOTSOCK);
    sl = sizeof ss;
    ERR(getsockname(nul, (struct sockaddr *)&ss, &sl), ENOTSOCK);
    SYS(close(nul));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");
    cmdpeer_serve(l4, 1);
    cmdpeer_serve(l6, 1);
    cmdpeer_serve(l4, 1);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "errors", subject, peer_fn); }
