/* A kernel-side peer that obeys one-byte commands on each connection:
 *   'd'  send one byte 'D' back
 *   'D'  send 1000 bytes back
 *   'w'  shutdown(SHUT_WR)
 *   'r'  abort: SO_LINGER 0 and close (the subject gets an RST)
 *   'q'  close
 *   EOF  close
 * cmdpeer_serve(lfd, n) accepts n connections and serves each in its own
 * thread until it ends; it returns when all have ended. */
#ifndef CT_CMDPEER_H
#define CT_CMDPEER_H

#include "common.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *cmdpeer_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char big[1000];
    memset(big, 'B', sizeof big);
    for (;;) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c == 'd') {
            send_all(fd, "D", 1);
        } else if (c == 'D') {
            send_all(fd, big, sizeof big);
        } else if (c == 'w') {
            SYS(shutdown(fd, SHUT_WR));
        } else if (c == 'r') {
            struct linger lg = {1, 0};
            SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
            break;
        } else if (c == 'q') {
            break;
        } else {
            FAIL("cmdpeer: unknown command 0x%02x", (unsigned char)c);
        }
    }
    close(fd);
    return NULL;
}

static inline void cmdpeer_serve(int lfd, int n)
{
    pthread_t *th = calloc((size_t)n, sizeof *th);
    CHECK(th, "calloc");
    for (int i = 0; i < n; i++) {
        int c = accept_timeout(lfd, 20000);
        CHECK(pthread_create(&th[i], NULL, cmdpeer_conn, (void *)(intptr_t)c) == 0,
              "pthread_create");
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    free(th);
}

#endif
