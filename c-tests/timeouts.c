/* SO_RCVTIMEO and SO_SNDTIMEO: a blocking send into a peer that does not
 * read fills the buffers and then fails with EAGAIN after the timeout; a
 * blocking accept, TCP recv and UDP recv time out with EAGAIN; a blocking
 * connect whose handshake hangs (the peer's accept queue is full) returns
 * EINPROGRESS when SO_SNDTIMEO expires. */
#include "common.h"

#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

static void set_timeo(int fd, int opt, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    SYS(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv));
}

#define TIMED(what, ms, call, e)                                                                              \
    do {                                                                                                      \
        int64_t t0_ = now_ms();                                                                               \
        ERR(call, e);                                                                                         \
        int64_t took_ = now_ms() - t0_;                                                                       \
        CHECK(took_ >= (ms) * 8 / 10 && took_ < (ms) + 3000, "%s: gave up after %lld ms, timeout %d ms", what, \
              (long long)took_, ms);                                                                          \
    } while (0)

static void subject(void)
{
    static char chunk[65536];
    char c;
    sync_wait("peer-listening");

    /* Send into a peer that never reads. */
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    set_timeo(a, SO_SNDTIMEO, 300);
    size_t total = 0;
    int64_t t0 = 0;
    for (;;) {
        t0 = now_ms();
        ssize_t n = send(a, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n < 0) {
            CHECK(errno == EAGAIN, "send with SO_SNDTIMEO: %s, want EAGAIN", errno_name(errno));
            break;
        }
        total += (size_t)n;
        CHECK(total < (256u << 20), "sent 256 MiB to a peer that does not read");
    }
    int64_t took = now_ms() - t0;
    CHECK(took >= 240 && took < 3300, "send gave up after %lld ms, timeout 300 ms", (long long)took);
    ct_log("%zu bytes buffered before the send timeout", total);
    CHECK(total > 0, "nothing could be sent at all");

    /* recv on the same connection. */
    set_timeo(a, SO_RCVTIMEO, 200);
    TIMED("TCP recv", 200, recv(a, &c, 1, 0), EAGAIN);

    /* accept. */
    int l = tcp_listen(AF_INET6, ct_addr6(), ct_port(5), 4);
    set_timeo(l, SO_RCVTIMEO, 200);
    TIMED("accept", 200, accept(l, NULL, NULL), EAGAIN);
    SYS(close(l));

    /* UDP recv. */
    int u = udp_bind(AF_INET, ct_addr(), 0);
    set_timeo(u, SO_RCVTIMEO, 200);
    TIMED("UDP recv", 200, recv(u, &c, 1, 0), EAGAIN);
    SYS(close(u));

    /* A blocking connect that cannot complete. */
    sync_wait("peer-backlog-full");
    int h = SYS(socket(AF_INET, SOCK_STREAM, 0));
    set_timeo(h, SO_SNDTIMEO, 300);
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(3));
    TIMED("connect", 300, connect(h, (struct sockaddr *)&ss, sl), EINPROGRESS);
    SYS(close(h));
    SYS(close(a));
    sync_signal("subject-done");
    ct_log("ok");
}

static void peer_fn(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int lfull = tcp_listen(AF_INET, ct_peer(), ct_port(3), 0);
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(3));
    int filler = SYS(socket(AF_INET, SOCK_STREAM, 0));
    SYS(connect(filler, (struct sockaddr *)&ss, sl));
    sleep_ms(50);
    sync_signal("peer-backlog-full");
    sync_signal("peer-listening");
    int a = accept_timeout(l, 20000);
    sync_wait("subject-done"); /* never reads */
    SYS(close(a));
    SYS(close(filler));
    SYS(close(lfull));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "timeouts", subject, peer_fn); }
