/* Signals and blocking calls. A handler installed without SA_RESTART makes
 * a blocked recv, read, accept, poll, select and epoll_wait fail with
 * EINTR; with SA_RESTART a blocked recv carries on and returns the data
 * that comes later, unless SO_RCVTIMEO is set (then EINTR, as Linux
 * does). The signal comes from a helper thread 200 ms into each call. */
#include "cmdpeer.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;
static void on_usr1(int sig) { (void)sig; hits++; }

static pthread_t main_thread;
struct kick {
    int delay_ms;
    int send_fd; /* >= 0: send "d" there 300 ms after the signal */
};

static void *kicker(void *arg)
{
    struct kick *k = arg;
    sleep_ms(k->delay_ms);
    pthread_kill(main_thread, SIGUSR1);
    if (k->send_fd >= 0) {
        sleep_ms(300);
        send_all(k->send_fd, "d", 1);
    }
    return NULL;
}

static pthread_t kick(struct kick *k)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, kicker, k) == 0, "pthread_create");
    return t;
}

static void handler(int restart)
{
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR1, &sa, NULL));
}

#define INTERRUPTED(what, call)                                                                         \
    do {                                                                                                \
        struct kick k_ = {200, -1};                                                                     \
        int h_ = hits;                                                                                  \
        int64_t t0_ = now_ms();                                                                         \
        pthread_t t_ = kick(&k_);                                                                       \
        ERR(call, EINTR);                                                                               \
        pthread_join(t_, NULL);                                                                         \
        CHECK(hits == h_ + 1, "%s: handler ran %d times", what, (int)(hits - h_));                      \
        CHECK(now_ms() - t0_ >= 150, "%s returned EINTR after %lld ms, before the signal", what,        \
              (long long)(now_ms() - t0_));                                                             \
    } while (0)

static void subject(void)
{
    char buf[16];
    main_thread = pthread_self();
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    int l = tcp_listen(AF_INET, ct_addr(), ct_port(5), 4);
    int ep = SYS(epoll_create1(0));
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = 1};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ee));

    handler(0);
    INTERRUPTED("recv", recv(a, buf, sizeof buf, 0));
    INTERRUPTED("read", read(a, buf, sizeof buf));
    INTERRUPTED("accept", accept(l, NULL, NULL));
    struct pollfd p = {.fd = a, .events = POLLIN};
    INTERRUPTED("poll", poll(&p, 1, 5000));
    struct epoll_event out;
    INTERRUPTED("epoll_wait", epoll_wait(ep, &out, 1, 5000));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(a, &r);
    struct timeval tv = {5, 0};
    INTERRUPTED("select", select(a + 1, &r, NULL, NULL, &tv));

    /* SA_RESTART: recv resumes and returns the byte sent 300 ms later. */
    handler(1);
    struct kick k = {200, a};
    int h = hits;
    pthread_t t = kick(&k);
    ssize_t n = recv(a, buf, sizeof buf, 0);
    CHECK(n == 1 && buf[0] == 'D', "SA_RESTART recv: %zd (%s), want the byte 'D'", n,
          n < 0 ? errno_name(errno) : "");
    pthread_join(t, NULL);
    CHECK(hits == h + 1, "SA_RESTART: handler ran %d times", (int)(hits - h));

    /* SA_RESTART but SO_RCVTIMEO set: EINTR. */
    struct timeval to = {5, 0};
    SYS(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to));
    INTERRUPTED("recv with SO_RCVTIMEO", recv(a, buf, sizeof buf, 0));

    send_all(a, "q", 1);
    expect_eof(a, 5000);
    SYS(close(a));
    SYS(close(l));
    SYS(close(ep));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    sync_signal("peer-listening");
    cmdpeer_serve(l, 1);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "eintr", subject, peer_fn); }
