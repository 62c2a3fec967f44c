/* A prefork TCP server in C, for scripts/tests/shared-prefork.sh.
 *   prefork ADDR PORT WORKERS
 * Listens, prints "listening PID", forks WORKERS children that each
 * accept on the inherited listener and, per connection, read to EOF,
 * reply "PID BYTES\n", and keep the connection until the client closes
 * it. The parent waits for its children; SIGTERM ends them all. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t kids[64];
static int nkids;

static void term(int sig) {
    (void)sig;
    for (int i = 0; i < nkids; i++) kill(kids[i], SIGTERM);
    _exit(0);
}

static void serve(int c) {
    char buf[65536];
    long total = 0;
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) total += n;
    if (n < 0) { printf("worker %d: read: %s\n", getpid(), strerror(errno)); return; }
    int len = snprintf(buf, sizeof buf, "%d %ld\n", getpid(), total);
    if (write(c, buf, len) != len) { printf("worker %d: write: %s\n", getpid(), strerror(errno)); return; }
    while ((n = read(c, buf, sizeof buf)) > 0) {}
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: prefork ADDR PORT WORKERS\n"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    if (listen(s, 64) < 0) { perror("listen"); return 1; }
    printf("listening %d\n", getpid());
    int workers = atoi(argv[3]);
    for (int i = 0; i < workers && i < 64; i++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); term(0); }
        if (p == 0) {
            printf("worker %d\n", getpid());
            for (;;) {
                int c = accept(s, NULL, NULL);
                if (c < 0) {
                    printf("worker %d: accept: %s\n", getpid(), strerror(errno));
                    if (errno == EINTR || errno == ECONNABORTED) continue;
                    return 1;
                }
                serve(c);
                close(c);
            }
        }
        kids[nkids++] = p;
    }
    close(s);
    signal(SIGTERM, term);
    int st;
    pid_t p;
    while ((p = wait(&st)) > 0) printf("worker %d ended: status %d\n", p, st);
    return 0;
}
