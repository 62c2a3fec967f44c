/* Non-blocking connect: EINPROGRESS, completion through poll and through
 * select, SO_ERROR (0 on success, ECONNREFUSED then cleared on refusal),
 * EISCONN after completion, and EALREADY / EAGAIN while the handshake
 * hangs (the peer's listener has a full accept queue, so its kernel drops
 * our SYN). */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/select.h>
#include <unistd.h>

/* Ports: 0 peer v4 echo, 1 peer v6 echo, 2 closed, 3 peer full backlog. */

static int start_connect(int fam, const char *host, int port, int use_flag)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, fam, host, port);
    int fd;
    if (use_flag) {
        fd = SYS(socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0));
    } else {
        fd = SYS(socket(fam, SOCK_STREAM, 0));
        set_nonblock(fd, 1);
    }
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK not reported by F_GETFL");
    ERR(connect(fd, (struct sockaddr *)&ss, len), EINPROGRESS);
    return fd;
}

static int so_error(int fd)
{
    int err = -1;
    socklen_t len = sizeof err;
    SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
    CHECK(len == sizeof err, "SO_ERROR length %u", len);
    return err;
}

static void ping(int fd, const char *msg)
{
    char buf[64];
    size_t n = strlen(msg);
    send_all(fd, msg, n);
    recv_exact(fd, buf, n);
    CHECK(memcmp(buf, msg, n) == 0, "echo differs");
}

static void wait_select_write(int fd, int ms)
{
    fd_set w, r;
    FD_ZERO(&w);
    FD_ZERO(&r);
    FD_SET(fd, &w);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int n = SYS(select(fd + 1, &r, &w, NULL, &tv));
    CHECK(n == 1 && FD_ISSET(fd, &w), "select: connect did not complete within %d ms", ms);
}

static void subject(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    sync_wait("peer-listening");

    /* poll, SOCK_NONBLOCK, IPv4. */
    int fd = start_connect(AF_INET, ct_peer(), ct_port(0), 1);
    int ev = wait_fd(fd, POLLOUT, 5000);
    CHECK(ev & POLLOUT, "poll: no POLLOUT within 5 s (revents 0x%x)", ev);
    CHECK(!(ev & (POLLERR | POLLHUP)), "poll: revents 0x%x on success", ev);
    CHECK(so_error(fd) == 0, "SO_ERROR %s after success", errno_name(so_error(fd)));
    len = sizeof ss;
    SYS(getpeername(fd, (struct sockaddr *)&ss, &len));
    CHECK(sa_port((struct sockaddr *)&ss) == ct_port(0), "getpeername port");
    /* Linux: the first connect after completion returns 0 (it moves the
     * socket to connected), later ones EISCONN; either is fine first. */
    len = mkaddr(&ss, AF_INET, ct_peer(), ct_port(0));
    int r = connect(fd, (struct sockaddr *)&ss, len);
    CHECK(r == 0 || errno == EISCONN, "second connect: %s", errno_name(errno));
    ERR(connect(fd, (struct sockaddr *)&ss, len), EISCONN);
    ping(fd, "poll-v4");
    SYS(close(fd));

    /* select, fcntl O_NONBLOCK, IPv4. */
    fd = start_connect(AF_INET, ct_peer(), ct_port(0), 0);
    wait_select_write(fd, 5000);
    CHECK(so_error(fd) == 0, "SO_ERROR after select success");
    ping(fd, "select-v4");
    SYS(close(fd));

    /* poll, IPv6. */
    fd = start_connect(AF_INET6, ct_peer6(), ct_port(1), 1);
    ev = wait_fd(fd, POLLOUT, 5000);
    CHECK((ev & POLLOUT) && !(ev & POLLERR), "poll v6: revents 0x%x", ev);
    CHECK(so_error(fd) == 0, "SO_ERROR after v6 success");
    ping(fd, "poll-v6");
    SYS(close(fd));

    /* Refused, seen through poll. */
    fd = start_connect(AF_INET, ct_peer(), ct_port(2), 1);
    ev = wait_fd(fd, POLLOUT, 5000);
    CHECK((ev & POLLERR) && (ev & POLLHUP), "refused: poll revents 0x%x, want POLLERR|POLLHUP", ev);
    int e = so_error(fd);
    CHECK(e == ECONNREFUSED, "refused: SO_ERROR %s", errno_name(e));
    e = so_error(fd);
    CHECK(e == 0, "SO_ERROR not cleared by reading it: %s", errno_name(e));
    SYS(close(fd));

    /* Refused, seen through select (an error counts as writable). */
    fd = start_connect(AF_INET6, ct_peer6(), ct_port(2), 0);
    wait_select_write(fd, 5000);
    e = so_error(fd);
    CHECK(e == ECONNREFUSED, "refused v6 (select): SO_ERROR %s", errno_name(e));
    SYS(close(fd));

    /* Handshake that hangs: the peer's accept queue is full. */
    sync_wait("peer-backlog-full");
    fd = start_connect(AF_INET, ct_peer(), ct_port(3), 1);
    len = mkaddr(&ss, AF_INET, ct_peer(), ct_port(3));
    ERR(connect(fd, (struct sockaddr *)&ss, len), EALREADY);
    ev = wait_fd(fd, POLLOUT | POLLIN, 300);
    CHECK(ev == 0, "hanging connect: poll revents 0x%x, want none", ev);
    CHECK(so_error(fd) == 0, "hanging connect: SO_ERROR set");
    char c = 'x';
    ERR(send(fd, &c, 1, MSG_NOSIGNAL), EAGAIN);
    ERR(recv(fd, &c, 1, 0), EAGAIN);
    len = sizeof ss;
    ERR(getpeername(fd, (struct sockaddr *)&ss, &len), ENOTCONN);
    SYS(close(fd));
    sync_signal("subject-done");
    ct_log("ok");
}

static void echo_once(int lfd)
{
    char buf[64];
    int c = accept_timeout(lfd, 20000);
    int ev = wait_fd(c, POLLIN, 10000);
    CHECK(ev & POLLIN, "echo: no data");
    ssize_t n = SYS(recv(c, buf, sizeof buf, 0));
    send_all(c, buf, (size_t)n);
    expect_eof(c, 10000);
    SYS(close(c));
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    /* Backlog 0 holds one queued connection; later SYNs are dropped. */
    int lfull = tcp_listen(AF_INET, ct_peer(), ct_port(3), 0);
    /* The filler is the peer's own connection (kernel to kernel). */
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(3));
    int filler = SYS(socket(AF_INET, SOCK_STREAM, 0));
    SYS(connect(filler, (struct sockaddr *)&ss, sl));
    sleep_ms(50);
    sync_signal("peer-backlog-full");
    sync_signal("peer-listening");
    echo_once(l4);
    echo_once(l4);
    echo_once(l6);
    sync_wait("subject-done");
    close(filler);
    close(lfull);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "nb_connect", subject, peer_fn); }
