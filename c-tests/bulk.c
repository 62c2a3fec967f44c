/* 64 MiB each way with a checksum: the subject sends 64 MiB to the peer
 * over IPv4 in writes of varying size, the peer sends 64 MiB back over
 * IPv6. Each receiver checks every byte against the generator (so a
 * corrupted, lost or reordered byte is named by its offset) and the
 * FNV-1a checksum the sender computed, which follows the data. */
#include "common.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#define TOTAL (64u << 20)

static uint8_t gen(uint64_t seed, uint64_t pos)
{
    uint64_t z = (pos >> 3) + seed * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (uint8_t)(z >> (8 * (pos & 7)));
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void send_stream(int fd, uint64_t seed)
{
    static uint8_t buf[200000];
    const size_t sizes[] = {65536, 1, 12345, 100000, 1460, 200000, 7};
    uint64_t pos = 0, h = 0xcbf29ce484222325ULL;
    for (int i = 0; pos < TOTAL; i++) {
        size_t n = sizes[i % 7];
        if (n > TOTAL - pos)
            n = TOTAL - pos;
        for (size_t j = 0; j < n; j++)
            buf[j] = gen(seed, pos + j);
        h = fnv(h, buf, n);
        send_all(fd, buf, n);
        pos += n;
    }
    uint64_t be = ((uint64_t)htonl((uint32_t)h) << 32) | htonl((uint32_t)(h >> 32));
    send_all(fd, &be, 8);
}

static void recv_stream(int fd, uint64_t seed)
{
    static uint8_t buf[1 << 16];
    uint64_t pos = 0, h = 0xcbf29ce484222325ULL;
    int64_t t0 = now_ms();
    while (pos < TOTAL) {
        CHECK(wait_fd(fd, POLLIN, 20000), "stalled at byte %llu of %u", (unsigned long long)pos, TOTAL);
        size_t want = sizeof buf < TOTAL - pos ? sizeof buf : TOTAL - pos;
        ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        CHECK(n > 0, "recv at byte %llu: %s", (unsigned long long)pos, n < 0 ? strerror(errno) : "EOF");
        for (ssize_t j = 0; j < n; j++)
            CHECK(buf[j] == gen(seed, pos + (uint64_t)j), "byte %llu is 0x%02x, want 0x%02x",
                  (unsigned long long)(pos + (uint64_t)j), buf[j], gen(seed, pos + (uint64_t)j));
        h = fnv(h, buf, (size_t)n);
        pos += (uint64_t)n;
    }
    uint64_t be;
    recv_exact(fd, &be, 8);
    uint64_t theirs = ((uint64_t)ntohl((uint32_t)be) << 32) | ntohl((uint32_t)(be >> 32));
    CHECK(theirs == h, "checksum %016llx, sender's %016llx", (unsigned long long)h, (unsigned long long)theirs);
    int64_t ms = now_ms() - t0;
    ct_log("received 64 MiB in %lld ms (%.1f MB/s), checksum %016llx", (long long)ms,
           ms > 0 ? TOTAL / 1e3 / (double)ms : 0.0, (unsigned long long)h);
}

static void subject(void)
{
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    send_stream(a, 1);
    SYS(shutdown(a, SHUT_WR));
    expect_eof(a, 20000);
    SYS(close(a));
    int b = tcp_connect(AF_INET6, ct_peer6(), ct_port(1));
    recv_stream(b, 2);
    expect_eof(b, 20000);
    SYS(close(b));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l4 = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    int l6 = tcp_listen(AF_INET6, ct_peer6(), ct_port(1), 8);
    sync_signal("peer-listening");
    int a = accept_timeout(l4, 20000);
    recv_stream(a, 1);
    expect_eof(a, 20000);
    SYS(close(a));
    int b = accept_timeout(l6, 20000);
    send_stream(b, 2);
    SYS(close(b));
}

int main(int argc, char **argv) { return ct_main(argc, argv, "bulk", subject, peer_fn); }
