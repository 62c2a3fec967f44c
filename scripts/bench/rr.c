/* Request/response and connection-rate load for scripts/bench/shared.sh.
 *
 *   rr server PORT            echo server on 0.0.0.0:PORT (poll, one thread)
 *   rr rr HOST PORT SECONDS   1-byte ping-pong on one connection: prints
 *                             "rr N per_s"
 *   rr crr HOST PORT SECONDS  connect, 1 byte each way, close, repeated:
 *                             prints "crr N per_s"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int dial(const char *host, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) { fprintf(stderr, "bad host\n"); exit(2); }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); exit(1); }
    return fd;
}

static void ping(int fd) {
    char c = 'x';
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) { perror("ping"); exit(1); }
}

static int server(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 512)) { perror("listen"); return 1; }
    struct pollfd p[1024];
    int n = 1;
    p[0].fd = l; p[0].events = POLLIN;
    for (;;) {
        if (poll(p, n, -1) < 0) continue;
        if (p[0].revents && n < 1024) {
            int c = accept(l, NULL, NULL);
            if (c >= 0) {
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                p[n].fd = c; p[n].events = POLLIN; p[n].revents = 0; n++;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!p[i].revents) continue;
            char buf[4096];
            ssize_t r = read(p[i].fd, buf, sizeof buf);
            if (r <= 0 || write(p[i].fd, buf, r) != r) {
                close(p[i].fd);
                p[i--] = p[--n];
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "server")) return server(atoi(argv[2]));
    if (argc != 5) { fprintf(stderr, "usage: see the comment in rr.c\n"); return 2; }
    double secs = atof(argv[4]), t0 = now(), end = t0 + secs;
    long n = 0;
    if (!strcmp(argv[1], "rr")) {
        int fd = dial(argv[2], atoi(argv[3]));
        while (now() < end) { for (int i = 0; i < 100; i++) ping(fd); n += 100; }
        close(fd);
    } else {
        while (now() < end) { int fd = dial(argv[2], atoi(argv[3])); ping(fd); close(fd); n++; }
    }
    printf("%s %ld %.0f\n", argv[1], n, n / (now() - t0));
    return 0;
}
